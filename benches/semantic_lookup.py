"""Semantic cache lookup latency on SQLite + sqlite-vec (cache/semantic_sqlite.py), in-process.

N entries of DIMS-wide random unit vectors spread over NAMESPACES namespaces (the vec0 partition key)
and 4 parameter keys; then QUERIES lookups through `SqliteVectorStore.nearest` (the store's thread,
awaited from the loop, as the stage does) in one namespace, p50/p99 in ms.

    PYTHONPATH=python python benches/semantic_lookup.py [N ...]     (DIMS=384 NAMESPACES=100 QUERIES=200)
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time

import sqlite_vec

from gatecore.cache.semantic_sqlite import SqliteVectorStore

DIMS = int(os.environ.get("DIMS", "384"))
NAMESPACES = int(os.environ.get("NAMESPACES", "100"))
QUERIES = int(os.environ.get("QUERIES", "200"))


def unit(rng: random.Random) -> list[float]:
    v = [rng.gauss(0, 1) for _ in range(DIMS)]
    n = sum(x * x for x in v) ** 0.5
    return [x / n for x in v]


async def measure(n: int) -> None:
    rng = random.Random(n)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteVectorStore(os.path.join(tmp, "semantic.db"))
        table = store._table(DIMS)
        db = store._connection()
        far = time.time() + 3600
        with db:
            db.executemany(
                f"INSERT INTO {table} (ns, params, emb, entry_id, answer, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (
                        f"team:{i % NAMESPACES}",
                        f"p{i % 4}",
                        sqlite_vec.serialize_float32(unit(rng)),
                        f"e{i}",
                        b"x" * 200,
                        far,
                    )
                    for i in range(n)
                ),
            )
        times = []
        for _ in range(QUERIES):
            query = unit(rng)
            started = time.perf_counter()
            await store.nearest("team:0", "p1", query)
            times.append((time.perf_counter() - started) * 1e3)
        await store.aclose()
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(
        f"{n:>7} entries, {DIMS} dims, {NAMESPACES} namespaces: p50 {statistics.median(times):.2f} ms, p99 {p99:.2f} ms"
    )


def main() -> None:
    for n in [int(a) for a in sys.argv[1:]] or [10_000, 100_000]:
        asyncio.run(measure(n))


if __name__ == "__main__":
    main()
