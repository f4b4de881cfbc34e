"""In-process microbenchmark: µs per request of gatecore's telemetry around the whole pipeline.

Runs the real `POST /v1/chat/completions` handler N times on uvloop (body read, auth, policy fields,
routing, limits, the attempt loop, the buffered relay, response headers, then one turn of the loop
where the recorders run, as in the server) against an upstream that answers at once. The answer comes through the connection pool's `exchange` (an
in-memory pool), so with tracing on the traced pool's attempt span and `traceparent` header are
included. Modes, alternated round by round (best of REPEATS per mode):

    bare      metrics, access log, ledger and tracing off
    metrics   /metrics aggregation on (counters, histograms, the stage histogram)
    logged    metrics + the JSON access log (lines encoded and written to a sink)
    traced    metrics + tracing at 100% sampling, exported to a loopback OTLP/HTTP receiver that
              decodes and drops (tests/upstreams/otlp_receiver.py, started as its own process); the
              time includes exporting every span (a flush before the clock stops), since the
              exporter's thread encodes and sends on the same process's CPU and GIL
    lean      traced with `stage_spans: false` (request, attempt and relay spans only)
    unsampled tracing on with `sample_ratio: 0`: non-recording spans and the upstream `traceparent`

Each mode's wall time per request includes waiting for the receiver's answers; its CPU time is
this process's alone (the gateway, and the SDK's export thread on trees that used it), the fairer
figure for what tracing costs a worker.

Works on any gatecore tree (modes it does not know are skipped), to compare before/after:

    PYTHONPATH=python .venv/bin/python benches/telemetry_overhead.py [N] [REPEATS] [ROUNDS]
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvloop

from gatecore.config.load import load_config
from gatecore.server.app import GatewayApp
from gatecore.worker import Worker
from gatecore.upstream.pool import ConnectionPool
from gatecore.upstream.response import WholeAnswer

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-bench-telemetry-0001"
HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nhost: bench\r\n\r\n"
BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
ANSWER = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'
)


class InstantPool(ConnectionPool):
    """A pool whose exchange answers at once (marking the write as a real one does)."""

    __slots__ = ()

    async def exchange(self, ctx: Any, head: bytes, body: bytes, timeouts: Any) -> Any:
        if hasattr(ctx, "upstream_sent_ns") and not ctx.upstream_sent_ns:
            ctx.upstream_sent_ns = time.perf_counter_ns()
        return WholeAnswer(200, b"application/json", ANSWER)


class InstantProvider:
    name = "p"
    tokenizer = "o200k_base"

    def __init__(self, pool: ConnectionPool):
        self.pool = pool

    async def send(self, ctx: Any, upstream_model: str, timeouts: Any) -> Any:
        return await self.pool.exchange(ctx, HEAD, ctx.body, timeouts)

    def is_stream(self, ctx: Any, response: Any) -> bool:
        return False

    def stream_decoder(self, ctx: Any) -> None:
        return None

    def decode_body(self, ctx: Any, body: bytes) -> bytes:
        return body

    def decode_error(self, status: int, body: bytes) -> Any:
        raise AssertionError("no error in this bench")


class Sink:
    """Where the access log's lines go: encoded and written as usual, then dropped."""

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


class Scope:
    proto = "http"
    method = "POST"
    path = "/v1/chat/completions"
    query_string = ""

    def __init__(self) -> None:
        self.headers = {"authorization": f"Bearer {KEY}", "content-length": str(len(BODY))}


class Proto:
    async def __call__(self) -> bytes:
        return BODY

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        assert status == 200, body


def config(mode: str, traces_url: str) -> dict[str, Any]:
    telemetry: dict[str, Any] = {"metrics": mode != "bare"}
    if mode in ("traced", "lean", "unsampled"):
        # The default queue holds a run of 1,000 requests (N ≤ 1000 for these modes): nothing dropped.
        telemetry["tracing"] = {
            "enabled": True,
            "endpoint": traces_url,
            "sample_ratio": 0.0 if mode == "unsampled" else 1.0,
            "max_queue_size": 10_000,
            "stage_spans": mode == "traced",
        }
    return {
        "server": {"access_log": mode == "logged"},
        "providers": [{"name": "p", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"}],
        "models": [{"name": "m", "deployments": [{"provider": "p", "model": "m"}]}],
        "auth": {"master_key": KEY},
        "ledger": {"enabled": False},
        "telemetry": telemetry,
    }


def pool_class(mode: str) -> type[ConnectionPool]:
    if mode not in ("traced", "lean", "unsampled"):
        return InstantPool
    from gatecore.telemetry.traced_pool import TracedConnectionPool

    class TracedInstantPool(TracedConnectionPool, InstantPool):  # traced, then answered at once
        __slots__ = ()

    return TracedInstantPool


async def measure(mode: str, n: int, repeats: int, traces_url: str) -> tuple[float, float]:
    app = GatewayApp()
    gateway = Worker(load_config(config(mode, traces_url)))
    app.serve(gateway)
    for recorder in gateway.recording.recorders:  # the access log goes nowhere
        if type(recorder).__name__ == "AccessLog":
            recorder._out = Sink()  # type: ignore[attr-defined]
            recorder._fd = None  # type: ignore[attr-defined]  # write to the sink, not stdout's fd
    route = gateway.routes.find("m")
    assert route is not None
    origin = next(iter(gateway.providers.values())).pool.origin  # type: ignore[attr-defined]
    provider = InstantProvider(pool_class(mode)(origin, gateway.sweeper))
    for deployment in route.deployments:
        deployment.provider = provider
    handler = app.routes["/v1/chat/completions"]["POST"]
    scope, proto = Scope(), Proto()
    for _ in range(min(n, 2000)):  # warm up
        await handler(scope, proto)
        await asyncio.sleep(0)  # a turn of the loop: the recorders run (Recording.finished)
    tracing = getattr(gateway, "tracing", None)
    if tracing is not None:
        if hasattr(tracing, "start"):  # trees before gatecore exported its own spans have none
            tracing.start()
        await flush_spans(tracing)
    best = best_cpu = float("inf")
    for _ in range(repeats):
        started, cpu_started = time.perf_counter_ns(), time.process_time_ns()
        for _ in range(n):
            await handler(scope, proto)
            await asyncio.sleep(0)  # a turn of the loop: the recorders run (Recording.finished)
        if tracing is not None:  # until the last span is exported
            await flush_spans(tracing)
        best = min(best, (time.perf_counter_ns() - started) / n / 1000)
        best_cpu = min(best_cpu, (time.process_time_ns() - cpu_started) / n / 1000)
    if tracing is not None:
        await tracing.aclose()
    gateway.close()
    return best, best_cpu


async def flush_spans(tracing: Any) -> None:
    """Export every span ended so far: gatecore's own exporter, or (trees before it) the SDK's."""
    if hasattr(tracing, "flush"):
        await tracing.flush()
    else:
        await asyncio.to_thread(tracing.provider.force_flush)


@contextlib.contextmanager
def receiver() -> Iterator[str]:
    """A loopback OTLP receiver in drop mode, in its own process (its CPU is not the gateway's)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.upstreams.otlp_receiver", "--port", str(port), "--drop"], cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1/traces"
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    modes = ["bare", "metrics", "logged"]
    try:
        import gatecore.telemetry.traced_pool  # noqa: F401 - a tree with tracing

        modes += ["traced", "lean", "unsampled"]
    except ImportError:
        pass
    results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    with receiver() as traces_url:
        for _ in range(rounds):
            for mode in modes:
                results[mode].append(uvloop.run(measure(mode, n, repeats, traces_url)))
    bare = min(wall for wall, _ in results["bare"])
    bare_cpu = min(cpu for _, cpu in results["bare"])
    for mode, runs in results.items():
        best = min(wall for wall, _ in runs)
        cpu = min(c for _, c in runs)
        print(
            f"{mode:9s} {best:7.2f} µs/request (+{best - bare:6.2f}), CPU {cpu:7.2f} µs "
            f"(+{cpu - bare_cpu:6.2f}); rounds: {', '.join(f'{r:.2f}' for r, _ in runs)}; "
            f"best of {repeats} x {n} per round"
        )


if __name__ == "__main__":
    main()
