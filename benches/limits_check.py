"""Microbenchmark: the cost per request of the limits stage plus its settle, in µs.

- `off`: a key with no limits and no limits configured (the path every request takes by default);
- `local`: key rpm + max_parallel and a global rpm, in the shared-memory table (3 cells);
- `local+tpm`: the same plus a tpm limit (the prompt counted with the Rust tokenizer);
- `local+tpm+budget`: the same plus a USD budget on the key (the cost estimated from the price table);
- `redis`: the `local` rules on a real redis-server on loopback (one EVALSHA round trip to admit,
  one to settle, sent off the request path but awaited here so every check is measured whole);
- `redis, 32 at once`: the same from 32 concurrent tasks, as CPU time per request (the calls of a
  loop tick share one pipeline, redis_batch.py), which is what bounds a busy worker.

Each figure is admission + the `x-ratelimit-*` headers + settle, the best of 3 runs.
Run: `PYTHONPATH=python .venv/bin/python benches/limits_check.py` (needs /usr/bin/redis-server).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.services.redis import running_redis

from gatecore.config.load import load_config
from gatecore.routing.stage import RouteStage
from gatecore.worker import Worker
from gatecore.policy.key_policy import KeyPolicy
from gatecore.request import CHAT, RequestContext

BODY = b'{"model":"m","messages":[{"role":"user","content":"Say hello to the benchmark, please."}],"max_tokens":16}'
HUGE = 1_000_000_000


def config(redis_url: str | None, global_rpm: bool) -> Worker:
    doc = {
        "providers": [{"name": "echo", "kind": "echo"}],
        "models": [{"name": "m", "deployments": [{"provider": "echo", "model": "m"}]}],
        "store": {"url": "sqlite:///:memory:"},
    }
    if global_rpm:
        doc["limits"] = {"global": {"rpm": HUGE}}
    if redis_url:
        doc["redis"] = {"url": redis_url}
    return Worker(load_config(doc))


async def measure(gateway: Worker, key: KeyPolicy, n: int, drain: bool) -> float:
    ctx = RequestContext(CHAT, "bench", BODY, 0)
    ctx.key = key
    ctx.client_model = "m"
    ctx.max_tokens = 16
    route_stage, limits = RouteStage(gateway.routes), gateway.limits
    limits.spent_since = None  # no ledger here: budgets start at zero (a server seeds each once)
    route_stage(ctx)
    redis = limits.redis
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(n):
            ctx.limits = None
            await limits(ctx)
            if ctx.limits is not None:
                ctx.limits.headers()
            limits.record(ctx, 0)
            if drain and redis is not None:
                await asyncio.gather(*redis._pending)
        best = min(best, time.perf_counter() - started)
    if ctx.limits is None and (key.rpm or key.max_parallel):
        raise AssertionError("no limit was applied")
    return best / n * 1e6


async def concurrent_cpu(gateway: Worker, key: KeyPolicy, n: int) -> float:
    limits, route_stage = gateway.limits, RouteStage(gateway.routes)

    async def one_task(count: int) -> None:
        for _ in range(count):
            ctx = RequestContext(CHAT, "bench", BODY, 0)
            ctx.key, ctx.client_model, ctx.max_tokens = key, "m", 16
            route_stage(ctx)
            await limits(ctx)
            limits.record(ctx, 0)
        assert limits.redis is not None
        await asyncio.gather(*limits.redis._pending)

    started = time.process_time()
    await asyncio.gather(*(one_task(n // 32) for _ in range(32)))
    return (time.process_time() - started) / n * 1e6


def policy(rpm: bool = False, tpm: bool = False, budget: bool = False) -> KeyPolicy:
    return KeyPolicy(
        "k1",
        "bench",
        "sk-b",
        None,
        source="config",
        rpm=HUGE if rpm else None,
        tpm=HUGE if tpm else None,
        max_parallel=HUGE if rpm else None,
        budget_usd=HUGE if budget else None,
    )


async def main() -> None:
    results: dict[str, float] = {}
    off = config(None, global_rpm=False)
    results["off"] = await measure(off, policy(), 100_000, False)
    local = config(None, global_rpm=True)
    results["local (3 cells)"] = await measure(local, policy(rpm=True), 100_000, False)
    results["local+tpm (4 cells)"] = await measure(local, policy(rpm=True, tpm=True), 100_000, False)
    full = policy(rpm=True, tpm=True, budget=True)
    results["local+tpm+budget (5 cells)"] = await measure(local, full, 100_000, False)
    with running_redis() as server:
        shared = config(server.url, global_rpm=True)
        await measure(shared, policy(rpm=True), 200, True)  # connect, load the scripts
        results["redis (3 cells, admit+settle)"] = await measure(shared, policy(rpm=True), 2_000, True)
        results["redis, 32 at once (CPU per request)"] = await concurrent_cpu(shared, policy(rpm=True), 4_000)
        await shared.limits.aclose()
    for name, us in results.items():
        print(f"{name:32s} {us:8.2f} µs/request")


if __name__ == "__main__":
    asyncio.run(main())
