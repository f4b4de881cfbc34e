"""Streamed answers through a real gatecore with and without the PII output window: time to the
first content byte and the gaps between content writes, on a paced stream from the mock upstream
(N content deltas of ~5 characters, GAP_MS apart, like an engine's tokens).

    PYTHONPATH=python:. python benches/guardrail_stream.py [N] [GAP_MS]

Each variant runs 5 streams; the medians are shown. The upstream's own first delta comes at ~0 ms.
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import tempfile
from pathlib import Path

from tests.e2e import raw_http
from tests.e2e.gateway import MASTER_KEY, running_gateway, write_config
from tests.upstreams.openai_mock import MockUpstream

VARIANTS = {
    "plain": None,
    "window 128 + 96": {"window_chars": 128, "overlap_chars": 96},
    "window 32 + 64 (defaults)": {"window_chars": 32, "overlap_chars": 64},
    "window 16 + 32": {"window_chars": 16, "overlap_chars": 32},
}


def _has_text(data: bytes) -> bool:
    if not data.startswith(b"{"):
        return False
    choices = json.loads(data).get("choices") or [{}]
    return bool((choices[0].get("delta") or {}).get("content"))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 80
    gap_ms = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    with MockUpstream() as upstream, tempfile.TemporaryDirectory() as tmp:
        models, guards = [], []
        for i, (name, window) in enumerate(VARIANTS.items()):
            model = {"name": f"m{i}", "deployments": [{"provider": "up", "model": "up-1"}]}
            if window is not None:
                guards.append({"name": f"g{i}", "kind": "pii", "entities": {"email": "redact", "credit_card": "redact"},
                               **window})  # fmt: skip
                model["guardrails"] = [f"g{i}"]
            models.append((name, model))
        config = {
            "providers": [{"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up"}],
            "models": [m for _, m in models],
            "guardrails": guards,
            "auth": {"master_key": MASTER_KEY},
            "ledger": {"enabled": False},
        }
        path = write_config(config, Path(tmp) / "gatecore.yaml")
        with running_gateway(["--config", str(path)], Path(tmp)) as gw:
            print(f"{n} deltas of ~5 characters, {gap_ms} ms apart\n")
            print("| variant | first content (ms) | median gap (ms) | p99 gap (ms) | content writes |")
            print("|---|---|---|---|---|")
            for name, model in models:
                firsts, gaps, writes = [], [], []
                for _ in range(5):
                    body = {"model": model["name"], "stream": True, "messages": [{"role": "user", "content": "x"}],
                            "mock": {"chunks": n, "gap_ms": gap_ms, "tail_gap_ms": 0}}  # fmt: skip
                    result = raw_http.read_stream(
                        gw.port, "/v1/chat/completions", json.dumps(body).encode(),
                        {"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"}, timeout=60,
                    )  # fmt: skip
                    start = result.events[0].at  # the role event: the stream's head
                    content = [e.at for e in result.events if _has_text(e.data)]
                    firsts.append((content[0] - start) * 1000)
                    gaps += [(b - a) * 1000 for a, b in itertools.pairwise(content)]
                    writes.append(len(content))
                gaps.sort()
                p99 = gaps[int(len(gaps) * 0.99) - 1] if gaps else 0.0
                print(f"| {name} | {statistics.median(firsts):.1f} | {statistics.median(gaps):.1f} | {p99:.1f} | "
                      f"{statistics.median(writes):.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
