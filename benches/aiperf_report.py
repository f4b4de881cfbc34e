"""The table of benches/aiperf_run.sh: aiperf's TTFT and ITL per target and concurrency (medians over
repeats), gatecore minus direct, and gatecore's own run summary (its overhead figure).

Run: `python benches/aiperf_report.py OUT_DIR` (stdlib only).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

RUN_DIR = re.compile(r"(direct|gatecore)-c(\d+)-r(\d+)")
STATS = ("avg", "p50", "p99")


def busy(path: Path) -> list[str]:
    """Per-core busy % over the 1 s sampled in `path` (two /proc/stat cpu lines)."""
    lines = [[int(v) for v in line.split()[1:]] for line in path.read_text().splitlines() if line]
    if len(lines) != 2:
        return []
    delta = [b - a for a, b in zip(lines[0], lines[1], strict=True)]
    idle = delta[3] + delta[4]
    return [f"{100 * (1 - idle / max(1, sum(delta))):.0f} % (all cores)"]


def main(out: Path) -> None:
    figures: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    ours: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for directory in sorted(out.iterdir()):
        found = RUN_DIR.fullmatch(directory.name)
        if found is None or not directory.is_dir():
            continue
        target, conc = found.group(1), int(found.group(2))
        summary: dict[str, Any] = json.loads((directory / "profile_export_aiperf.json").read_text())
        row = figures[(target, conc)]
        row["requests"].append(summary["request_count"]["avg"])
        row["error_rate"].append(summary.get("request_error_rate", {}).get("avg", 0.0))
        for metric, name in (("time_to_first_token", "ttft"), ("inter_token_latency", "itl")):
            for stat in STATS:
                row[f"{name}_{stat}"].append(summary[metric][stat])
        run = directory / "run.json"
        if target == "gatecore" and run.exists():
            mine = json.loads(run.read_text())
            for figure in ("overhead_ms", "ttft_ms", "itl_ms"):
                for stat in ("p50", "p99"):
                    ours[conc][f"{figure}_{stat}"].append(mine[figure][stat])
    print(f"# aiperf through gatecore vs direct ({out.name})\n")
    print("Medians over repeats; ms. `added` = gatecore minus direct at the same concurrency.\n")
    print(
        "| c | target | requests | errors % | TTFT avg | TTFT p50 | TTFT p99 | ITL avg | ITL p50 | ITL p99 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for conc in sorted({c for _, c in figures}):
        rows = {t: figures[(t, conc)] for t in ("direct", "gatecore") if (t, conc) in figures}
        for target, row in rows.items():
            cells = [f"{statistics.median(row[f'{n}_{s}']):.3f}" for n in ("ttft", "itl") for s in STATS]
            requests = statistics.median(row["requests"])
            errors = statistics.median(row["error_rate"])
            print(f"| {conc} | {target} | {requests:.0f} | {errors:.1f} | " + " | ".join(cells) + " |")
        if len(rows) == 2:
            added = [
                statistics.median(rows["gatecore"][f"{n}_{s}"])
                - statistics.median(rows["direct"][f"{n}_{s}"])
                for n in ("ttft", "itl")
                for s in STATS
            ]
            print(f"| {conc} | **added** | | | " + " | ".join(f"**{a:+.3f}**" for a in added) + " |")
    if ours:
        print("\ngatecore's own run summary (GET /admin/v1/runs/{id}; medians over repeats, ms):\n")
        print("| c | overhead p50 | overhead p99 | TTFT p50 | TTFT p99 | ITL p50 | ITL p99 |")
        print("|---|---|---|---|---|---|---|")
        for conc, row in sorted(ours.items()):
            keys = (
                "overhead_ms_p50",
                "overhead_ms_p99",
                "ttft_ms_p50",
                "ttft_ms_p99",
                "itl_ms_p50",
                "itl_ms_p99",
            )
            print(f"| {conc} | " + " | ".join(f"{statistics.median(row[k]):.3f}" for k in keys) + " |")
    for name in ("cpu-before.txt", "cpu-after.txt"):
        path = out / name
        if path.exists():
            when = "before the run (nothing of ours running)" if "before" in name else "after the run"
            print(f"\nmachine busy {', '.join(busy(path))} over 1 s {when}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
