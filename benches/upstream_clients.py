#!/usr/bin/env python3
"""Client-only microbenchmark: which upstream HTTP/1.1 client should gatecore use (DESIGN.md §1)?

Each candidate runs in its own process pinned to core 0 (uvloop, keep-alive, CONCURRENCY requests in
flight) against the harness's nginx mock on core 1, for DURATION seconds after a short warm-up, REPEATS
times per mode:
  json    POST http://127.0.0.1:18000/v1/chat/completions, small chat body -> 403-byte JSON
  stream  same body to :18001 -> SSE, 20 chat.completion.chunk events + [DONE] (sent at once)
The figure is completed responses per second (median of the repeats) and the client's CPU time per
request. A candidate at ~100 % client CPU is the bottleneck (as intended); core 1 near 100 % means the
mock side bounds the figure instead.

Candidates:
  aiohttp       aiohttp.ClientSession + TCPConnector (keep-alive pool), body read / iter_any
  gatecore      gatecore.upstream (lean asyncio.Protocol client, framing in gatecore._core)
  raw-py        minimal asyncio.Protocol client, pure-Python HTTP/1.1 framing (reference point)
  raw-httptools the same client with the httptools (llhttp, C) parser (reference point)

  .venv/bin/python benches/upstream_clients.py [--candidates a,b] [--modes json,stream]
      [--concurrency 32] [--duration 5] [--repeats 3]
Writes benches/results/upstream_clients.json and prints a markdown table. Every loop is bounded: each
worker stops at its deadline, each worker process runs under a timeout, and waits on the mock are bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HARNESS = os.environ.get("GWBENCH_HARNESS", os.path.join(ROOT, "..", "shared", "bench"))
RUN = os.environ.get("GWBENCH_RUN", "/tmp/gwbench")
HOST = "127.0.0.1"
PORTS = {"json": 18000, "stream": 18001}
PATH = "/v1/chat/completions"
BODY = json.dumps(
    {
        "model": "mock",
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Say hello in one word."},
        ],
        "max_tokens": 32,
    },
    separators=(",", ":"),
).encode()
STREAM_EVENTS = 21  # 20 chunks + [DONE]
CANDIDATES = ["aiohttp", "gatecore", "raw-py", "raw-httptools"]


def request_head(port: int) -> bytes:
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: */*\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode()


# --- one exchange per candidate -------------------------------------------------------------------
# An Exchange sends one request and returns the response body size (raises on a non-200 answer).
Exchange = Callable[[], Awaitable[int]]
Factory = Callable[[str, int], Awaitable[tuple[Exchange, Callable[[], Awaitable[None]]]]]


def check_body(mode: str, body: bytes) -> None:
    if mode == "stream" and body.count(b"data: ") != STREAM_EVENTS:
        raise RuntimeError(f"stream: {body.count(b'data: ')} events")


async def make_aiohttp(mode: str, port: int) -> tuple[Exchange, Callable[[], Awaitable[None]]]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60, force_close=False)
    session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
    url = f"http://{HOST}:{port}{PATH}"
    headers = {"Content-Type": "application/json"}

    async def json_once() -> int:
        async with session.post(url, data=BODY, headers=headers) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            return len(body)

    async def stream_once() -> int:
        # a relay forwards chunks as they arrive, so read them one by one, as gatecore would
        async with session.post(url, data=BODY, headers=headers) as resp:
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            parts = [chunk async for chunk in resp.content.iter_any()]
        body = b"".join(parts)
        check_body(mode, body)
        return len(body)

    return (json_once if mode == "json" else stream_once), session.close


async def make_gatecore(mode: str, port: int) -> tuple[Exchange, Callable[[], Awaitable[None]]]:
    # The lean client as of python/gatecore/upstream/ (pool.py, http1.py): PoolSet -> ConnectionPool
    # per origin; exchange([ctx,] head, body, timeouts) -> connection whose head has arrived; the body is read
    # with read_all(limit) or next_chunk() until None. Adapt here if that interface changes.
    import inspect
    import types

    from gatecore.upstream.deadlines import DeadlineSweeper
    from gatecore.upstream.pool import Origin, PoolSet
    from gatecore.upstream.timeouts import Timeouts

    pools = PoolSet(DeadlineSweeper())
    pool = pools.get(Origin(f"http://{HOST}:{port}"))
    timeouts = Timeouts(connect=10.0, first_byte=30.0, idle=30.0, total=60.0)
    head = request_head(port)
    # exchange(ctx, head, body, timeouts): ctx is the request context (the pool sets ctx.upstream and
    # reads ctx.client_gone); a stand-in with those two attributes is enough here.
    call: Any = pool.exchange
    if "ctx" in inspect.signature(pool.exchange).parameters:
        ctx: Any = types.SimpleNamespace(upstream=None, client_gone=False)
        call = functools.partial(pool.exchange, ctx)

    async def json_once() -> int:
        resp = await call(head, BODY, timeouts)
        body = await resp.read_all(1 << 24)
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}")
        return len(body)

    async def stream_once() -> int:
        resp = await call(head, BODY, timeouts)
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}")
        parts = []
        while (chunk := await resp.next_chunk()) is not None:
            parts.append(chunk)
        body = b"".join(parts)
        check_body(mode, body)
        return len(body)

    async def close() -> None:
        pools.close()

    return (json_once if mode == "json" else stream_once), close


class PyHttp1Parser:
    """Minimal HTTP/1.1 response framing in pure Python: Content-Length, chunked, or until close."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.reset()

    def reset(self) -> None:
        self.status = 0
        self.head_done = False
        self.length: int | None = None  # remaining Content-Length bytes
        self.chunked = False
        self.chunk_left = 0
        self.complete = False
        self.keep_alive = True

    def feed(self, data: bytes) -> bytes:
        """Feed received bytes; return the body bytes they complete (may be empty)."""
        buf = self.buf
        buf += data
        out = bytearray()
        if not self.head_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return b""
            lines = bytes(buf[:end]).split(b"\r\n")
            del buf[: end + 4]
            self.status = int(lines[0].split(b" ", 2)[1])
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    self.length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    self.chunked = True
                elif name == b"connection" and b"close" in value.lower():
                    self.keep_alive = False
            self.head_done = True
        if self.chunked:
            while True:
                if self.chunk_left:
                    take = min(self.chunk_left, len(buf))
                    out += buf[:take]
                    del buf[:take]
                    self.chunk_left -= take
                    if self.chunk_left:
                        break
                    continue
                nl = buf.find(b"\r\n")
                if nl < 0:
                    break
                line = bytes(buf[:nl]).split(b";")[0].strip()
                if not line:  # CRLF after a chunk's data
                    del buf[: nl + 2]
                    continue
                size = int(line, 16)
                if size == 0:  # last-chunk + final CRLF (no trailers expected)
                    if len(buf) < nl + 4:
                        break
                    del buf[: nl + 4]
                    self.complete = True
                    break
                del buf[: nl + 2]
                self.chunk_left = size
        elif self.length is not None:
            take = min(self.length, len(buf))
            out += buf[:take]
            del buf[:take]
            self.length -= take
            self.complete = self.length == 0
        else:
            out += buf
            buf.clear()
        return bytes(out)


class RawConnection(asyncio.Protocol):
    """One keep-alive connection, one exchange at a time; body chunks handed over via a future."""

    def __init__(self, use_httptools: bool) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.chunks: list[bytes] = []
        self.complete = False
        self.status = 0
        self.closed = False
        self.ht: Any = None
        self.py: PyHttp1Parser | None = None
        if use_httptools:
            import httptools

            self.ht = httptools.HttpResponseParser(self)
        else:
            self.py = PyHttp1Parser()

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.complete = True

    def on_headers_complete(self) -> None:
        assert self.ht is not None
        self.status = self.ht.get_status_code()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not an asyncio.Transport subclass: cast, don't isinstance-check
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.ht is not None:
            self.ht.feed_data(data)
        else:
            assert self.py is not None
            body = self.py.feed(data)
            if body:
                self.chunks.append(body)
            self.status = self.py.status
            self.complete = self.py.complete
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        w = self.waiter
        if w is not None and not w.done():
            w.set_exception(ConnectionError("upstream closed"))

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.complete = False
        self.status = 0
        if self.py is not None:
            self.py.reset()  # (llhttp handles consecutive keep-alive responses by itself)
        self.transport.write(data)

    async def next_chunk(self, loop: asyncio.AbstractEventLoop) -> bytes | None:
        while True:
            if self.chunks:
                data = b"".join(self.chunks)
                self.chunks.clear()
                return data
            if self.complete:
                return None
            if self.closed:
                raise ConnectionError("upstream closed mid-response")
            self.waiter = loop.create_future()
            try:
                await asyncio.wait_for(self.waiter, 30)
            finally:
                self.waiter = None


async def make_raw(
    mode: str, port: int, use_httptools: bool
) -> tuple[Exchange, Callable[[], Awaitable[None]]]:
    loop = asyncio.get_running_loop()
    idle: list[RawConnection] = []
    head_body = request_head(port) + BODY

    async def once() -> int:
        while idle:
            conn = idle.pop()
            if not conn.closed:
                break
        else:
            _, conn = await loop.create_connection(lambda: RawConnection(use_httptools), HOST, port)
        conn.send(head_body)
        parts = []
        while (chunk := await conn.next_chunk(loop)) is not None:
            parts.append(chunk)
        if conn.status != 200:
            raise RuntimeError(f"HTTP {conn.status}")
        idle.append(conn)
        body = b"".join(parts)
        check_body(mode, body)
        return len(body)

    async def close() -> None:
        for conn in idle:
            if conn.transport is not None:
                conn.transport.close()

    return once, close


FACTORIES: dict[str, Factory] = {
    "aiohttp": make_aiohttp,
    "gatecore": make_gatecore,
    "raw-py": lambda mode, port: make_raw(mode, port, False),
    "raw-httptools": lambda mode, port: make_raw(mode, port, True),
}


# --- worker process: load loop for one candidate, mode and repeat ----------------------------------


async def load(exchange: Exchange, concurrency: int, seconds: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    counts = {"requests": 0, "errors": 0, "bytes": 0}
    first_error: list[str] = []

    async def worker() -> None:
        while loop.time() < deadline:
            try:
                counts["bytes"] += await exchange()
                counts["requests"] += 1
            except Exception as exc:
                counts["errors"] += 1
                if not first_error:
                    first_error.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.01)

    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), seconds + 30)
    out: dict[str, Any] = dict(counts, wall_s=time.perf_counter() - t0)
    if first_error:
        out["first_error"] = first_error[0]
    return out


async def worker_main(
    candidate: str, mode: str, concurrency: int, duration: float, warmup: float
) -> dict[str, Any]:
    exchange, close = await FACTORIES[candidate](mode, PORTS[mode])
    try:
        await load(exchange, concurrency, warmup)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        stat0 = cpu_times()
        result = await load(exchange, concurrency, duration)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        stat1 = cpu_times()
    finally:
        await close()
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    result["client_cpu_s"] = round(cpu, 3)
    result["cores_busy_pct"] = busy(stat0, stat1)
    return result


def cpu_times() -> dict[str, tuple[int, int]]:
    """Per-core (busy, total) jiffies from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                v = [int(x) for x in vals]
                idle = v[3] + v[4]
                out[name] = (sum(v) - idle, sum(v))
    return out


def busy(a: dict[str, tuple[int, int]], b: dict[str, tuple[int, int]]) -> dict[str, float]:
    return {k: round(100 * (b[k][0] - a[k][0]) / max(1, b[k][1] - a[k][1]), 1) for k in a if k in b}


# --- orchestration ---------------------------------------------------------------------------------


def mock_up() -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{HOST}:18000/health", timeout=1):
            return True
    except OSError:
        return False


def run_one(args: argparse.Namespace, candidate: str, mode: str) -> dict[str, Any]:
    cmd = [
        "taskset",
        "-c",
        args.client_cpus,
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        "--candidates",
        candidate,
        "--modes",
        mode,
        "--concurrency",
        str(args.concurrency),
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
    ]
    try:
        p = subprocess.run(
            cmd, capture_output=True, text=True, timeout=args.duration + args.warmup + 60, check=False
        )
    except subprocess.TimeoutExpired:
        return {"failed": "timeout"}
    if p.returncode != 0:
        return {"failed": (p.stderr.strip().splitlines() or [f"rc {p.returncode}"])[-1][:300]}
    result: dict[str, Any] = json.loads(p.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--modes", default="json,stream")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--client-cpus", default=os.environ.get("GW_CPUS", "0"))
    ap.add_argument("--out", default=os.path.join(HERE, "results", "upstream_clients.json"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    candidates = [c for c in args.candidates.split(",") if c]
    modes = [m for m in args.modes.split(",") if m]

    if args.worker:  # one measurement, result as one JSON line
        import uvloop

        print(
            json.dumps(
                uvloop.run(worker_main(candidates[0], modes[0], args.concurrency, args.duration, args.warmup))
            )
        )
        return 0

    before = cpu_times()
    time.sleep(1)
    idle_check = busy(before, cpu_times())  # other load on the machine skews every figure
    print(f"cores busy before the runs (should be ~0): {idle_check}", flush=True)
    started_mock = False
    if not mock_up():
        subprocess.run(["bash", os.path.join(HARNESS, "mock", "start.sh")], check=True, timeout=120)
        started_mock = True
    try:
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for mode in modes:
            for r in range(args.repeats):
                for cand in candidates:  # interleaved, so drift hits every candidate alike
                    res = run_one(args, cand, mode)
                    runs.setdefault(cand, {}).setdefault(mode, []).append(res)
                    rps = res["requests"] / res["wall_s"] if "requests" in res else None
                    print(
                        f"{cand:14} {mode:6} #{r + 1} "
                        + (
                            f"{rps:9.0f} req/s  err={res['errors']}  cores={res['cores_busy_pct']}"
                            if rps is not None
                            else f"FAILED: {res['failed']}"
                        ),
                        flush=True,
                    )
    finally:
        if started_mock:
            subprocess.run(["bash", os.path.join(HARNESS, "mock", "stop.sh")], check=False, timeout=60)

    summary = []
    for cand in candidates:
        for mode in modes:
            ok = [x for x in runs[cand][mode] if "requests" in x]
            if not ok:
                summary.append({"candidate": cand, "mode": mode, "failed": runs[cand][mode][0].get("failed")})
                continue
            rps = [x["requests"] / x["wall_s"] for x in ok]
            cpu_us = [1e6 * x["client_cpu_s"] / max(1, x["requests"]) for x in ok]
            summary.append(
                {
                    "candidate": cand,
                    "mode": mode,
                    "rps": round(statistics.median(rps)),
                    "rps_all": [round(x) for x in rps],
                    "errors": sum(x["errors"] for x in ok),
                    "client_cpu_us_per_req": round(statistics.median(cpu_us), 1),
                    "client_cpu_pct": round(
                        statistics.median(100 * x["client_cpu_s"] / x["wall_s"] for x in ok)
                    ),
                    "core1_pct": statistics.median(x["cores_busy_pct"].get("cpu1", 0.0) for x in ok),
                    "first_error": next((x["first_error"] for x in ok if "first_error" in x), None),
                }
            )
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for mod in ("aiohttp", "httptools", "uvloop"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            versions[mod] = None
    doc = {
        "stamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": {
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeats": args.repeats,
            "client_cpus": args.client_cpus,
            "loop": "uvloop",
            "upstream": "harness nginx mock on core 1 (:18000 json, :18001 stream)",
        },
        "host": {"node": platform.node(), "kernel": platform.release(), "ncpu": os.cpu_count()},
        "cores_busy_before_pct": idle_check,
        "versions": versions,
        "summary": summary,
        "runs": runs,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)

    best = {m: max((s["rps"] for s in summary if s["mode"] == m and "rps" in s), default=0) for m in modes}
    print(
        f"\nupstream client probe: c={args.concurrency}, {args.duration:g} s x {args.repeats}, "
        f"client on cpu {args.client_cpus}, uvloop; median req/s\n"
    )
    print(
        "| client | mode | req/s (median) | req/s runs | vs best | client CPU µs/req "
        "| client CPU % | core1 % | errors |"
    )
    print("|---|---|---:|---|---:|---:|---:|---:|---:|")
    for s in summary:
        if "rps" not in s:
            print(f"| {s['candidate']} | {s['mode']} | — | failed: {s['failed']} | | | | | |")
            continue
        print(
            f"| {s['candidate']} | {s['mode']} | {s['rps']} | {', '.join(map(str, s['rps_all']))} | "
            f"{s['rps'] / best[s['mode']]:.2f} | {s['client_cpu_us_per_req']} | {s['client_cpu_pct']} | "
            f"{s['core1_pct']:.0f} | {s['errors']} |"
        )
    print(f"\n-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
