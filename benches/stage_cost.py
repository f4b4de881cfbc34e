"""What each stage and recorder costs a request when it is configured but not triggered: the whole chain
built up one piece at a time, each row's marginal cost in instructions (callgrind, deterministic) and in
CPU µs (the worker's own CPU time natively, which moves with the machine's load).

Rows are cumulative, in this order: `base` (static key; ledger, metrics and access log off), then a
virtual key from the store (among 1,000), the ledger, the metrics, rpm/tpm/budget limits on the key,
the access log, a guardrail (PII, on another model: the stage is built, this model has none), the
response cache (enabled, off for this model), tracing (`sample_ratio: 0`: the traceparent only). Each
row's server runs once under callgrind (JSON c=16, N requests after a warm-up; see cost.py) and once
natively (M requests, CPU time of the worker from /proc).

    PYTHONPATH=python .venv/bin/python benches/stage_cost.py [--n 400] [--m 6000] [--rows "base ..."]
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cost

TICK = os.sysconf("SC_CLK_TCK")


def rows() -> list[tuple[str, dict[str, Any], dict[str, object] | None]]:
    """(name, config, key fields or None for the static key), each row adding one piece."""
    config = cost.base_config()
    config["ledger"] = {"enabled": False}
    config["telemetry"] = {"metrics": False}
    out: list[tuple[str, dict[str, Any], dict[str, object] | None]] = [("base", copy.deepcopy(config), None)]
    key: dict[str, object] = {}
    out.append(("+ virtual key", copy.deepcopy(config), dict(key)))
    del config["ledger"]
    out.append(("+ ledger", copy.deepcopy(config), dict(key)))
    config["telemetry"] = {}
    out.append(("+ metrics (default config)", copy.deepcopy(config), dict(key)))
    key = dict(cost.LIMITS)
    out.append(("+ rpm, tpm, budget on the key", copy.deepcopy(config), dict(key)))
    config["server"] = {"access_log": True}
    out.append(("+ access log (all policies)", copy.deepcopy(config), dict(key)))
    config["guardrails"] = [{"name": "pii", "kind": "pii"}]
    config["models"][2]["guardrails"] = ["pii"]
    out.append(("+ guardrail on another model", copy.deepcopy(config), dict(key)))
    config["cache"] = {"enabled": True}
    config["models"][0]["cache"] = {"enabled": False}
    out.append(("+ cache on, off for this model", copy.deepcopy(config), dict(key)))
    config["telemetry"] = {
        "tracing": {"enabled": True, "endpoint": "http://127.0.0.1:9/v1/traces", "sample_ratio": 0.0}
    }
    out.append(("+ tracing, sample_ratio 0", copy.deepcopy(config), dict(key)))
    return out


def native_us(config: Path, key: str, m: int, conc: int, work: Path) -> float:
    """The worker's CPU µs per request over m requests, natively (pinned like the load bench)."""
    env = {**os.environ, "PYTHONPATH": str(cost.ROOT / "python")}
    log = open(work / "native.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            "taskset",
            "-c",
            cost.GW_CPU,
            sys.executable,
            "-m",
            "gatecore",
            "serve",
            "--config",
            str(config),
            "--port",
            str(cost.PORT),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{cost.PORT}/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.25)
        worker = int(
            subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()[0]
        )
        request = cost.request_bytes("json", key)
        cost.load(cost.PORT, request, m // 3, conc)

        def cpu() -> int:
            fields = Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime + stime, in ticks

        before = cpu()
        cost.load(cost.PORT, request, m, conc)
        return (cpu() - before) / TICK / m * 1e6
    finally:
        proc.send_signal(2)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=400, help="requests per callgrind cell")
    parser.add_argument("--m", type=int, default=6000, help="requests per native CPU-time run")
    parser.add_argument("--conc", type=int, default=16)
    parser.add_argument("--rows", default="", help="only rows whose name contains one of these words")
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(cost.LOADGEN_CPU)})
    work = Path(tempfile.mkdtemp(prefix="gatecore-stages-"))
    mocks = cost.start_mocks()
    results: list[tuple[str, float, float]] = []
    try:
        for i, (name, config, key_fields) in enumerate(rows()):
            if args.rows and not any(w in name for w in args.rows.split()):
                continue
            path, key = cost.write_config(work, f"row{i}", config, key_fields)
            instr = cost.run_cells(work, f"row{i}", path, key, ["json"], [args.conc], args.n)["cells"]
            assert isinstance(instr, dict)
            us = native_us(path, key, args.m, args.conc, work)
            results.append((name, instr[f"json c={args.conc}"], us))
            print(f"{name:36} {results[-1][1] / 1000:8.1f}k instr  {us:7.1f} µs CPU", flush=True)
    finally:
        mocks.terminate()
        mocks.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nJSON, c={args.conc}: per request, cumulative, and each row's marginal cost\n")
    print("| row | instructions | marginal | CPU µs | marginal |")
    print("|---|---:|---:|---:|---:|")
    prev: tuple[float, float] | None = None
    for name, instr, us in results:
        d_i = f"{(instr - prev[0]) / 1000:+.1f}k" if prev else "-"
        d_u = f"{us - prev[1]:+.1f}" if prev else "-"
        print(f"| {name} | {instr / 1000:.1f}k | {d_i} | {us:.1f} | {d_u} |")
        prev = (instr, us)


if __name__ == "__main__":
    main()
