"""GPU-pool fairness (issue 24): a quiet tenant's time to first token while another floods the pool,
with gatecore's fair queue on vs off vs straight to the engines, and the pool's total throughput.

Two vLLM-like engine emulators (tests/upstreams/engine_emulator.py: SLOTS slots each, TTFT s to first
token, TPOT s per token, FIFO queue) in one process; one gatecore in front of them serving the same
deployments as two models, `llama` (no queue) and `llama-fair` (`queue: {by: key,
target_in_flight: SLOTS}`). Phases, with the engines drained between them:

    unloaded-direct   the quiet tenant alone, straight to the engines (its baseline TTFT)
    unloaded-fair     the quiet tenant alone, through gatecore's llama-fair
    loaded-direct     FLOOD closed-loop flooders, FLOOD_EACH streams of FLOOD_TOKENS tokens each, plus the quiet
                      tenant, straight to the engines
    loaded-off        the same through gatecore's llama
    loaded-fair       the same through gatecore's llama-fair
    loaded-headroom   the same through `llama-headroom`: llama-fair with `headroom: HEADROOM` slots

The quiet tenant starts a QUIET_TOKENS-token stream every QUIET_EVERY s (open loop). Printed per phase:
the quiet tenant's TTFT p50/p99/max (s) and its ratio to the unloaded-direct p99, and the tokens per
second every client received until the phase's last request ended (the same work in every phase).
Bounded: FLOOD x FLOOD_EACH flood requests and QUIET_N quiet ones a phase, each cut after 600 s. Gateway on core 0, engines and load on core 1 (taskset, when there).

    PYTHONPATH=python .venv/bin/python benches/gpu_pool_fairness.py
    FLOOD=32 FLOOD_EACH=2 SLOTS=4 TTFT=1.0 TPOT=0.025 FLOOD_TOKENS=200 QUIET_N=40 QUIET_TOKENS=8
    QUIET_EVERY=0.5
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
ENV = os.environ
FLOOD = int(ENV.get("FLOOD", "32"))
FLOOD_EACH = int(ENV.get("FLOOD_EACH", "2"))
QUIET_N = int(ENV.get("QUIET_N", "40"))
HEADROOM = int(ENV.get("HEADROOM", "2"))
SLOTS = int(ENV.get("SLOTS", "4"))
TTFT = float(ENV.get("TTFT", "1.0"))
TPOT = float(ENV.get("TPOT", "0.025"))
FLOOD_TOKENS = int(ENV.get("FLOOD_TOKENS", "200"))
QUIET_TOKENS = int(ENV.get("QUIET_TOKENS", "8"))
QUIET_EVERY = float(ENV.get("QUIET_EVERY", "0.5"))
MASTER = "sk-bench-master-7d1e"
FLOOD_KEY = "sk-bench-flood-3a9c"
QUIET_KEY = "sk-bench-quiet-5b2f"


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(core: int, argv: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core), *argv]
    return argv


@contextlib.contextmanager
def engines() -> Iterator[list[str]]:
    argv = [sys.executable, "-m", "tests.upstreams.engine_emulator", "--replicas", "2", "--slots", str(SLOTS)]
    argv += ["--ttft", str(TTFT), "--tpot", str(TPOT), "--seconds", "3600"]
    proc = subprocess.Popen(pinned(1, argv), cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        urls = [proc.stdout.readline().strip() for _ in range(2)]
        assert all(u.startswith("http") for u in urls), urls
        yield urls
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def gateway(urls: list[str], workdir: Path) -> Iterator[str]:
    port = free_port()
    deployments = [{"provider": f"vllm-{i}", "model": "m"} for i in range(len(urls))]
    queue = {"by": "key", "target_in_flight": SLOTS, "max_wait_s": 300}
    config = {
        "providers": [
            {"name": f"vllm-{i}", "kind": "openai", "base_url": url, "api_key": "none"}
            for i, url in enumerate(urls)
        ],
        "models": [
            {"name": "llama", "deployments": deployments, "routing": {"strategy": "least_inflight"}},
            {
                "name": "llama-fair",
                "deployments": deployments,
                "routing": {"strategy": "least_inflight"},
                "queue": queue,
            },
            {
                "name": "llama-headroom",
                "deployments": deployments,
                "routing": {"strategy": "least_inflight"},
                "queue": {**queue, "headroom": HEADROOM},
            },
        ],
        "auth": {
            "master_key": MASTER,
            "keys": [{"key": FLOOD_KEY, "name": "flood"}, {"key": QUIET_KEY, "name": "quiet"}],
        },
        "ledger": {"enabled": False},
        "routing": {"engine_metrics": {"interval_s": 0.25}},
    }
    path = workdir / "gatecore.yaml"
    path.write_text(json.dumps(config))
    argv = [sys.executable, "-m", "gatecore", "serve", "--config", str(path), "--port", str(port)]
    env = {**ENV, "PYTHONPATH": str(ROOT / "python")}
    log = (workdir / "gatecore.log").open("wb")
    proc = subprocess.Popen(pinned(0, argv), cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "gatecore did not start"
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


async def stream(
    session: aiohttp.ClientSession, url: str, key: str, model: str, tokens: int, tally: list[int], tag: str
) -> float | None:
    """One streamed request; returns its TTFT (s) or None when it failed. Counts tokens into tally."""
    body = {
        "model": model,
        "stream": True,
        "max_tokens": tokens,
        "messages": [{"role": "user", "content": f"{tag} {time.monotonic_ns()}"}],
    }
    start = time.monotonic()
    first: float | None = None
    try:
        async with session.post(
            f"{url}/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
        ) as r:
            if r.status != 200:
                await r.read()
                return None
            async for line in r.content:
                if line.startswith(b"data: {") and b'"content"' in line:
                    if first is None:
                        first = time.monotonic() - start
                    tally[0] += 1
    except (TimeoutError, aiohttp.ClientError):
        return None
    return first


async def phase(url: str, model: str, flooders: int, quiet_every: float, quiet_n: int) -> dict[str, float]:
    """One phase on `url`: `flooders` closed-loop flooders of FLOOD_EACH streams each, and `quiet_n`
    quiet streams, one every `quiet_every` s from once the flood filled the engines. The same work in
    every mode: its tokens over the time until the last request ended is the pool's throughput."""
    timeout = aiohttp.ClientTimeout(total=600)
    tally = [0]
    ttfts: list[float] = []
    failures = 0
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:

        async def flooder(i: int) -> None:
            for _ in range(FLOOD_EACH):
                await stream(session, url, FLOOD_KEY, model, FLOOD_TOKENS, tally, f"flood-{i}")

        async def quiet() -> None:
            nonlocal failures
            ttft = await stream(session, url, QUIET_KEY, model, QUIET_TOKENS, tally, "quiet")
            if ttft is None:
                failures += 1
            else:
                ttfts.append(ttft)

        started = time.monotonic()
        tasks = [asyncio.create_task(flooder(i)) for i in range(flooders)]
        if flooders:
            await asyncio.sleep(2.0)  # the flood fills the engines first
        for _ in range(quiet_n):
            tasks.append(asyncio.create_task(quiet()))
            await asyncio.sleep(quiet_every)
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
    ttfts.sort()
    n = len(ttfts)
    return {
        "n": n,
        "failed": failures,
        "p50": ttfts[n // 2] if n else float("nan"),
        "p90": ttfts[min(n - 1, int(0.9 * n))] if n else float("nan"),
        "p99": ttfts[min(n - 1, int(0.99 * n))] if n else float("nan"),
        "max": ttfts[-1] if n else float("nan"),
        "tokens_s": tally[0] / elapsed if flooders else float("nan"),
        "elapsed_s": elapsed,
    }


async def drained(urls: list[str]) -> None:
    """Until every engine reports nothing running or waiting (bounded)."""
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            busy = 0.0
            for url in urls:
                async with session.get(url.removesuffix("/v1") + "/metrics") as r:
                    for line in (await r.text()).splitlines():
                        if line.startswith(("vllm:num_requests_running", "vllm:num_requests_waiting")):
                            busy += float(line.rsplit(" ", 1)[1])
            if not busy:
                return
            await asyncio.sleep(0.2)


async def run(urls: list[str], gw: str) -> list[tuple[str, dict[str, float]]]:
    direct = urls[0]  # unloaded: one engine is as good as two
    phases = [
        ("unloaded-direct", direct, "m", 0),
        ("unloaded-fair", f"{gw}/v1", "llama-fair", 0),
        ("loaded-direct", direct, "m", FLOOD),
        ("loaded-off", f"{gw}/v1", "llama", FLOOD),
        ("loaded-fair", f"{gw}/v1", "llama-fair", FLOOD),
        ("loaded-headroom", f"{gw}/v1", "llama-headroom", FLOOD),
    ]
    results = []
    async with aiohttp.ClientSession() as session:  # gatecore's first request loads its tokenizer
        await stream(session, f"{gw}/v1", QUIET_KEY, "llama-fair", 1, [0], "warm-up")
    for name, url, model, flood in phases:
        await drained(urls)
        if name == "loaded-direct":
            # Spread the flood over both engines as a round-robin balancer would: half the flood and
            # half the quiet requests on each (run as two half phases at once).
            halves = await asyncio.gather(
                *(phase(u, "m", flood // 2, QUIET_EVERY * 2, QUIET_N // 2) for u in urls)
            )
            results.append((name, merge(halves)))
        else:
            results.append((name, await phase(url, model, flood, QUIET_EVERY, QUIET_N)))
        print(name, json.dumps(results[-1][1]), flush=True)
    return results


def merge(halves: list[dict[str, float]]) -> dict[str, float]:
    return {
        "n": sum(h["n"] for h in halves),
        "failed": sum(h["failed"] for h in halves),
        "p50": max(h["p50"] for h in halves),
        "p90": max(h["p90"] for h in halves),
        "p99": max(h["p99"] for h in halves),
        "max": max(h["max"] for h in halves),
        "tokens_s": sum(h["tokens_s"] * h["elapsed_s"] for h in halves) / max(h["elapsed_s"] for h in halves),
        "elapsed_s": max(h["elapsed_s"] for h in halves),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, engines() as urls, gateway(urls, Path(tmp)) as gw:
        results = asyncio.run(run(urls, gw))
    base = dict(results)["unloaded-direct"]["p99"]
    off = dict(results)["loaded-off"]["tokens_s"]
    print()
    print(
        f"2 engines x {SLOTS} slots, TTFT {TTFT} s, {TPOT * 1000:g} ms/token; flood {FLOOD} x {FLOOD_TOKENS} tokens; "
        f"x {FLOOD_EACH}; quiet {QUIET_N} x {QUIET_TOKENS} tokens every {QUIET_EVERY} s"
    )
    print("| phase | quiet n | quiet TTFT p50 s | p90 s | p99 s | p99 / unloaded | tokens/s | vs off |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results:
        ratio = r["p99"] / base if base else float("nan")
        vs_off = r["tokens_s"] / off if off and r["tokens_s"] == r["tokens_s"] else float("nan")
        bar = "#" * min(60, round(ratio * 4)) if ratio == ratio else ""
        print(
            f"| {name} | {r['n']:g} (+{r['failed']:g} failed) | {r['p50']:.2f} | {r['p90']:.2f} | {r['p99']:.2f} | "
            f"{ratio:.2f}x `{bar}` | {r['tokens_s']:.0f} | {vs_off:.2f} |"
        )


if __name__ == "__main__":
    main()
