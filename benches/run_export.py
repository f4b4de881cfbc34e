"""Microbenchmark: a 100,000-request benchmark run in a SQLite ledger, summarised and exported.

Inserts N synthetic streamed rows of one run (plus as many of no run) into a fresh SQLite file, then
times `RunsRepository.summary` (totals and four percentile figures in SQL) and the CSV export
(`export_parts`, page by page) and reports the peak memory the export added (tracemalloc), which
stays at a page's worth whatever N is.

Run: `PYTHONPATH=python .venv/bin/python benches/run_export.py [N]`.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from gatecore.admin.runs_api import export_parts
from gatecore.ledger.repository import LedgerRepository
from gatecore.ledger.runs import RunsRepository
from gatecore.store import open_store
from gatecore.store.migrations import migrate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.*

from tests.e2e.ledger_store import ledger_row


def rows(n: int, run: str | None, start: float) -> list[tuple[object, ...]]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        ttft = rng.lognormvariate(3.0, 0.3)
        tokens = rng.randrange(50, 400)
        latency = ttft + (tokens - 1) * rng.uniform(4.8, 5.4)
        row = ledger_row(
            id=f"bench{run}:{i:x}",
            request_id=f"req-{run}-{i}",
            at=start + i * 0.01,
            model="paced",
            input_tokens=64,
            output_tokens=tokens,
            latency_ms=round(latency, 3),
            ttft_ms=round(ttft, 3),
            streamed=True,
            run_id=run,
            overhead_ms=round(rng.uniform(0.1, 0.4), 3),
            chunk_gaps=tokens + 2,
            gap_mean_ms=5.1,
            gap_p50_ms=5.0,
            gap_p99_ms=5.5,
            gap_max_ms=6.0,
        )
        out.append(row)
    return out


async def export(runs: RunsRepository) -> tuple[int, int]:
    """The run's CSV export, read to the end: its size and lines."""
    pages = aiter(runs.requests("bench-run"))
    first = await anext(pages)
    size = lines = 0
    async for part in export_parts(pages, first, "bench-run", "csv"):
        size += len(part)
        lines += part.count(b"\n")
    return size, lines


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = await open_store(f"sqlite:///{Path(directory) / 'ledger.db'}")
        await migrate(store)
        ledger = LedgerRepository(store)
        start = time.time() - n * 0.01
        for run in ("bench-run", None):
            batch = rows(n, run, start)
            for i in range(0, n, 5000):
                await ledger.insert(batch[i : i + 5000])
        runs = RunsRepository(store)
        began = time.perf_counter()
        summary = await runs.summary("bench-run")
        summarised = time.perf_counter() - began
        assert summary is not None and summary.requests == n
        began = time.perf_counter()
        size, lines = await export(runs)
        exported = time.perf_counter() - began
        tracemalloc.start()  # a second pass: tracing slows Python down several times
        await export(runs)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        await store.close()
    print(f"{n} requests in the run (+{n} of no run), SQLite")
    figures = f"TTFT p50 {summary.ttft_ms.p50} ms, ITL p99 {summary.itl_ms.p99} ms"
    print(f"summary: {summarised * 1000:.0f} ms ({figures})")
    print(f"CSV export: {exported * 1000:.0f} ms, {lines} lines, {size / 1e6:.1f} MB, ", end="")
    print(f"peak {peak / 1e6:.1f} MB held")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
