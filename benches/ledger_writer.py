"""In-process microbenchmark of the usage ledger: the request-path cost of `LedgerRecorder.record`
(price the request, build its row, queue it) and the batch write throughput into SQLite.

No server, no network; bounded by N and REPEATS. The SQLite file is a temp file (WAL, as in serving).

    PYTHONPATH=python .venv/bin/python benches/ledger_writer.py [N] [REPEATS]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from gatecore.config.schema import DeploymentPricing, LedgerConfig
from gatecore.ledger.recorder import LedgerRecorder
from gatecore.ledger.repository import LedgerRepository
from gatecore.policy.key_policy import KeyPolicy, Scope
from gatecore.pricing import PriceBook
from gatecore.request import CHAT, RequestContext, Usage
from gatecore.routing.deployment import Deployment
from gatecore.store import open_store
from gatecore.store.migrations import migrate


class _Provider:
    name = "openai"


def _contexts(n: int, deployment: Deployment) -> list[RequestContext]:
    team = Scope("team", "team_1", "search")
    key = KeyPolicy("key_1", "ci", "gk-abc", None, source="store", team=team)
    contexts = []
    for i in range(n):
        ctx = RequestContext(CHAT, f"req-{i}", b"", time.perf_counter_ns())
        ctx.key = key
        ctx.client_model = "gpt-4o"
        ctx.deployment = deployment
        ctx.deployment_id = deployment.id
        ctx.upstream_model = "gpt-4o"
        ctx.status = 200
        ctx.stream = bool(i % 2)
        ctx.usage = Usage(120, 40, 20, 0, "upstream")
        ctx.first_byte_ns = ctx.started + 1_000_000
        contexts.append(ctx)
    return contexts


async def record_cost(n: int, directory: Path) -> float:
    """µs per `record` call (the writer task is not running: only the request-path part)."""
    prices = PriceBook()
    deployment = Deployment(_Provider(), "gpt-4o", 1.0, None)  # type: ignore[arg-type]
    prices.add(deployment, "openai", DeploymentPricing(input_per_1m=2.5, output_per_1m=10.0))
    config = LedgerConfig(spool_dir=str(directory / "spool"), max_queue_rows=n + 1, batch_rows=n + 1)
    recorder = LedgerRecorder(config, prices, f"sqlite:///{directory / 'record.db'}")
    contexts = _contexts(n, deployment)
    now = time.perf_counter_ns()
    start = time.perf_counter()
    for ctx in contexts:
        recorder.record(ctx, now)
    return (time.perf_counter() - start) / n * 1e6


async def write_throughput(n: int, batch: int, directory: Path) -> float:
    """Rows per second inserted in batches of `batch` rows (one transaction per batch)."""
    store = await open_store(f"sqlite:///{directory / f'write-{batch}.db'}")
    await migrate(store)
    repository = LedgerRepository(store)
    deployment = Deployment(_Provider(), "gpt-4o", 1.0, None)  # type: ignore[arg-type]
    recorder = LedgerRecorder(LedgerConfig(), PriceBook(), "sqlite:///unused.db")
    rows = [recorder.rows.row(ctx, ctx.started, 0.001) for ctx in _contexts(n, deployment)]
    start = time.perf_counter()
    for i in range(0, n, batch):
        await repository.insert(rows[i : i + batch])
    elapsed = time.perf_counter() - start
    await store.close()
    return n / elapsed


async def main(n: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        best = min([await record_cost(n, directory) for _ in range(repeats)])
        print(f"record(): {best:.2f} µs per request (best of {repeats}, {n} requests)")
        for batch in (50, 500):
            rate = max([await write_throughput(n, batch, directory) for _ in range(repeats)])
            print(f"SQLite batch insert, {batch} rows per batch: {rate:,.0f} rows/s (best of {repeats})")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    asyncio.run(main(count, repeats))
