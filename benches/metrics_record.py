"""Microbenchmark: µs per `MetricsRecorder.record` (the in-process cost of /metrics per request).

A chat request routed as in the server (route stage on an echo deployment), finished with usage and a
price: a streamed one (TTFT and time per output token observed too) and a buffered one, each with and
without its stage marks (`stages`: the six observations of gatecore_stage_duration_seconds that every
request through the whole pipeline adds). With `shared`, the worker-files writer is attached (a write
is scheduled at most every 0.5 s; the loop here never yields, so what is measured is the check that
one is pending).

Run: `PYTHONPATH=python .venv/bin/python benches/metrics_record.py [N] [REPEATS]`.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time

from gatecore.config.load import load_config
from gatecore.request import CHAT, RequestContext, Usage
from gatecore.routing.stage import RouteStage
from gatecore.telemetry.deployment_state import DeploymentStates
from gatecore.telemetry.metrics import MetricsRecorder
from gatecore.telemetry.worker_files import WorkerFiles
from gatecore.worker import Worker

BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'


async def measure(recorder: MetricsRecorder, ctx: RequestContext, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        recorder.record(ctx, ctx.started + 50_000_000 + i)
    return (time.perf_counter() - started) / n * 1e6


async def main(n: int, repeats: int) -> None:
    doc = {
        "providers": [{"name": "echo", "kind": "echo"}],
        "models": [{"name": "m", "deployments": [{"provider": "echo", "model": "m"}]}],
        "store": {"url": "sqlite:///:memory:"},
    }
    gateway = Worker(load_config(doc))
    ctx = RequestContext(CHAT, "bench", BODY, time.perf_counter_ns())
    ctx.client_model = "m"
    RouteStage(gateway.routes)(ctx)
    ctx.status, ctx.usage, ctx.cost_usd = 200, Usage(120, 80, source="upstream"), 0.0004
    ctx.upstream_ns = 45_000_000
    # auth, decode, route, limits end 20, 25, 28 and 31 µs after arrival; written upstream at 40 µs.
    marks = [ctx.started + us * 1000 for us in (20, 25, 28, 31)]
    with tempfile.TemporaryDirectory() as directory:
        for label, shared in (("local", None), ("shared", WorkerFiles(directory, 0.5))):
            for stream in (False, True):
                for stages in (False, True):
                    ctx.stream = stream
                    ctx.first_byte_ns = ctx.started + 20_000_000 if stream else 0
                    ctx.stage_ends = list(marks) if stages else []
                    ctx.upstream_sent_ns = ctx.started + 40_000 if stages else 0
                    recorder = MetricsRecorder(
                        lambda: 0, shared, gateway.stage_names, DeploymentStates((r.name, d.id, d.breaker) for r in gateway.routes.all_routes() for d in r.deployments)
                    )
                    best = min([await measure(recorder, ctx, n) for _ in range(repeats)])
                    kind = ("stream" if stream else "buffered") + (" +stages" if stages else "")
                    print(f"{label:7} {kind:17} {best:6.2f} µs/record (best of {repeats} x {n})")
                    if shared is not None:
                        shared.write(recorder)
    gateway.close()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(args[0] if args else 100_000, args[1] if len(args) > 1 else 5))
