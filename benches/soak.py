"""Soak: one gatecore server under bounded mixed load, RSS and open fds of every worker sampled each second.

    PYTHONPATH=python .venv/bin/python benches/soak.py --duration 120 --concurrency 16
    make reliability          # the long form: 600 s at c=64 (SOAK_DURATION, SOAK_CONCURRENCY)

The mix (each request picks one, weights in MIX): OpenAI chat JSON and streams, Anthropic `/v1/messages`
translated to the OpenAI upstream (JSON and stream), streams the upstream cuts half-way, upstream 500s,
an upstream slower than the model's first-byte timeout (504), clients that hang up half-way through a
stream and clients that hang up while a non-streamed answer is still pending (past
`server.disconnect_watch_after`). The OpenAI mock of tests/upstreams runs in a subprocess of its own, so
the load generator (aiohttp, this process) does not share its GIL.

At the end it prints one JSON object: per worker the RSS at warm-up's end and at the end, the slope of
RSS over time after warm-up (least squares, MB/min), the fd count first/last, the count of answers per
mix entry and status, and any unexpected outcome (a status or error a mix entry should not produce).
`--out FILE` also writes every sample. `--tracemalloc DIR` starts the workers with tracemalloc on
(benches/soak_tracemalloc/sitecustomize.py) and leaves each worker's top allocation diff
(warm-up's end vs the end) in DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
KEY = "sk-soak-3c1f0e9a7b5d4c2e8f6a1b0d9c7e5a3f"
UPSTREAM_KEY = "sk-soak-upstream-8e2d4f6a0c1b3e5d7f9a"

# name -> weight. What each entry sends and what it must get back is in _one().
MIX: dict[str, int] = {
    "json": 30,
    "stream": 20,
    "messages": 8,
    "messages-stream": 8,
    "cut-stream": 8,
    "upstream-500": 8,
    "slow-timeout": 4,
    "client-gone-stream": 7,
    "client-gone-wait": 7,
}


def _config(upstream: str) -> dict[str, Any]:
    fast = {"connect": 2, "first_byte": 0.5, "idle": 2, "total": 10}
    return {
        "server": {"access_log": False},
        "providers": [{"name": "up", "kind": "openai", "base_url": upstream, "api_key": UPSTREAM_KEY}],
        "models": [
            {"name": "soak", "deployments": [{"provider": "up", "model": "soak-up"}], "timeouts": fast}
        ],
        "auth": {"keys": [{"key": KEY, "name": "soak"}]},
    }


def _serve_mock() -> None:
    """`--serve-mock`: run the OpenAI mock until stdin closes, printing its base URL; its recordings
    are cleared each second (a soak would otherwise grow the mock, not the gateway)."""
    sys.path.insert(0, str(REPO))
    from tests.upstreams.openai_mock import MockUpstream

    with MockUpstream() as mock:
        print(mock.base_url, flush=True)
        import threading

        done = threading.Event()
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
        while not done.wait(1.0):
            mock.clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PROMPTS = 0
"""Distinct prompt texts (`--prompts`); 0: every request's prompt is new."""


def _body(kind: str, i: int) -> tuple[str, dict[str, Any]]:
    n = i % PROMPTS if PROMPTS else i
    text = f"soak request {n} " + "lorem ipsum " * (n % 20)
    chat: dict[str, Any] = {"model": "soak", "messages": [{"role": "user", "content": text}]}
    if kind == "json":
        return "/v1/chat/completions", chat
    if kind == "stream":
        return "/v1/chat/completions", {**chat, "stream": True, "mock": {"chunks": 12}}
    if kind in ("messages", "messages-stream"):
        body = {"model": "soak", "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
        return "/v1/messages", {**body, "stream": kind == "messages-stream"}
    if kind == "cut-stream":
        return "/v1/chat/completions", {**chat, "stream": True, "mock": {"chunks": 12, "cut_after": 4}}
    if kind == "upstream-500":
        return "/v1/chat/completions", {**chat, "mock": {"status": 500}}
    if kind == "slow-timeout":
        return "/v1/chat/completions", {**chat, "mock": {"first_byte_delay_ms": 1500}}
    if kind == "client-gone-stream":
        return "/v1/chat/completions", {**chat, "stream": True, "mock": {"chunks": 40, "gap_ms": 20}}
    if kind == "client-gone-wait":
        return "/v1/chat/completions", {**chat, "mock": {"first_byte_delay_ms": 450}}
    raise ValueError(kind)


EXPECTED: dict[str, set[int]] = {
    "json": {200},
    "stream": {200},
    "messages": {200},
    "messages-stream": {200},
    "cut-stream": {200},
    "upstream-500": {500},
    "slow-timeout": {504},
    "client-gone-stream": {200},
    "client-gone-wait": {-1},
}


async def _one(session: aiohttp.ClientSession, base: str, kind: str, i: int) -> int:
    """Send one request of `kind`; its status, -1 where the client hung up on purpose."""
    path, body = _body(kind, i)
    headers = {"authorization": f"Bearer {KEY}", "x-api-key": KEY, "anthropic-version": "2023-06-01"}
    if kind == "client-gone-wait":
        # Hang up 0.35 s in: after disconnect_watch_after (0.25 s), before the answer (0.45 s).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.35):
                async with session.post(base + path, json=body, headers=headers) as resp:
                    await resp.read()
                    return resp.status
        return -1
    async with session.post(base + path, json=body, headers=headers) as resp:
        if kind == "client-gone-stream":
            await resp.content.readany()
            resp.close()  # drops the connection with the stream half-read
            return resp.status
        await resp.read()
        return resp.status


async def _load(base: str, concurrency: int, duration: float, counts: Counter[str]) -> None:
    names = [n for n in MIX if MIX[n] > 0]
    weights = [MIX[n] for n in names]
    deadline = time.monotonic() + duration
    rng = random.Random(7)
    seq = 0

    async def client() -> None:
        nonlocal seq
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while time.monotonic() < deadline:
                kind = rng.choices(names, weights)[0]
                seq += 1
                try:
                    status = await _one(session, base, kind, seq)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    counts[f"{kind} error {type(exc).__name__}"] += 1
                    continue
                counts[f"{kind} {status}"] += 1

    await asyncio.gather(*(client() for _ in range(concurrency)))


def _workers(master: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return [p for p in master.children(recursive=True) if "python" in p.name().lower()]
    return []


async def _sample(master: psutil.Process, stop: asyncio.Event, samples: list[dict[str, Any]]) -> None:
    t0 = time.monotonic()
    while not stop.is_set():
        row: dict[str, Any] = {"t": round(time.monotonic() - t0, 2)}
        for proc in [master, *_workers(master)]:
            with contextlib.suppress(psutil.Error):
                row[str(proc.pid)] = {
                    "rss_mb": round(proc.memory_info().rss / 2**20, 2),
                    "fds": proc.num_fds(),
                }
        samples.append(row)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def slope_mb_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    return 60.0 * sum((t - mx) * (v - my) for t, v in points) / den if den else 0.0


def _summary(samples: list[dict[str, Any]], warmup: float, master_pid: int) -> dict[str, Any]:
    per: dict[str, dict[str, Any]] = {}
    pids = {k for row in samples for k in row if k != "t"}
    for pid in sorted(pids):
        series = [(row["t"], row[pid]) for row in samples if pid in row]
        after = [(t, s["rss_mb"]) for t, s in series if t >= warmup]
        if not after:
            continue
        per[pid] = {
            "role": "master" if int(pid) == master_pid else "worker",
            "rss_mb_start": series[0][1]["rss_mb"],
            "rss_mb_after_warmup": after[0][1],
            "rss_mb_end": after[-1][1],
            "slope_mb_per_min": round(slope_mb_per_min(after), 3),
            "fds_after_warmup": next(s["fds"] for t, s in series if t >= warmup),
            "fds_end": series[-1][1]["fds"],
        }
    return per


async def _measure(
    base: str, master: psutil.Process, args: argparse.Namespace
) -> tuple[Counter[str], list[Any]]:
    """Wait for the gateway, then load it while sampling every process each second."""
    async with aiohttp.ClientSession() as probe:
        for _ in range(300):
            with contextlib.suppress(aiohttp.ClientError):
                async with probe.get(base + "/readyz") as resp:
                    if resp.status == 200:
                        break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError("the gateway did not become ready")
    samples: list[dict[str, Any]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample(master, stop, samples))
    counts: Counter[str] = Counter()
    await _load(base, args.concurrency, args.duration, counts)
    await asyncio.sleep(1.5)  # the last sample after the load has drained
    stop.set()
    await sampler
    return counts, samples


def _unexpected(counts: Counter[str]) -> dict[str, int]:
    out = {}
    for key, count in counts.items():
        kind, _, status = key.partition(" ")
        if not (status.lstrip("-").isdigit() and int(status) in EXPECTED[kind]):
            out[key] = count
    return out


def _soak(args: argparse.Namespace) -> dict[str, Any]:
    mock = subprocess.Popen(
        [sys.executable, __file__, "--serve-mock"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    workdir = Path(tempfile.mkdtemp(prefix="gatecore-soak-"))
    gateway: subprocess.Popen[bytes] | None = None
    try:
        assert mock.stdout is not None
        upstream = mock.stdout.readline().strip()
        config = workdir / "soak.yaml"
        config.write_text(yaml.safe_dump(_config(upstream)))
        port = _free_port()
        env = {
            **os.environ,
            "GATECORE_STORE_URL": f"sqlite:///{workdir / 'gatecore.db'}",
            "NO_PROXY": "127.0.0.1",
        }
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "python"), env.get("PYTHONPATH")]))
        if args.tracemalloc:
            hook = str(REPO / "benches" / "soak_tracemalloc")
            env["PYTHONPATH"] = hook + os.pathsep + env["PYTHONPATH"]
            env["GATECORE_SOAK_TRACEMALLOC"] = f"{args.tracemalloc}:{args.warmup}:{args.duration}"
        cmd = [sys.executable, "-m", "gatecore", "serve", "--config", str(config), "--port", str(port)]
        cmd += ["--workers", str(args.workers)]
        with open(workdir / "gateway.log", "wb") as log:
            gateway = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            counts, samples = asyncio.run(
                _measure(f"http://127.0.0.1:{port}", psutil.Process(gateway.pid), args)
            )
        except RuntimeError:
            print((workdir / "gateway.log").read_text()[-3000:], file=sys.stderr)
            raise
        result = {
            "duration_s": args.duration,
            "concurrency": args.concurrency,
            "warmup_s": args.warmup,
            "prompts": args.prompts or "all new",
            "requests": sum(counts.values()),
            "processes": _summary(samples, args.warmup, gateway.pid),
            "answers": dict(sorted(counts.items())),
            "unexpected": _unexpected(counts),
            "alive": gateway.poll() is None,
        }
        if args.out:
            Path(args.out).write_text(json.dumps({**result, "samples": samples}, indent=1))
        return result
    finally:
        if gateway is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(gateway.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                gateway.wait(15)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(gateway.pid, signal.SIGKILL)
        if mock.stdin is not None:
            mock.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            mock.wait(10)
        if mock.poll() is None:
            mock.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--warmup", type=float, default=20.0, help="seconds left out of the slope (default 20)"
    )
    parser.add_argument("--mix", help="override weights: name=W,name=W (0 leaves an entry out)")
    parser.add_argument("--prompts", type=int, default=0, help="distinct prompts (default 0: all new)")
    parser.add_argument("--out", help="write the summary and every sample here (JSON)")
    parser.add_argument("--tracemalloc", metavar="DIR", help="allocation diffs of each worker into DIR")
    parser.add_argument("--serve-mock", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_mock:
        _serve_mock()
        return
    global PROMPTS
    PROMPTS = args.prompts
    for part in filter(None, (args.mix or "").split(",")):
        name, _, weight = part.partition("=")
        if name not in MIX:
            parser.error(f"--mix: no entry {name!r} (entries: {', '.join(MIX)})")
        MIX[name] = int(weight)
    print(json.dumps(_soak(args), indent=1))


if __name__ == "__main__":
    main()
