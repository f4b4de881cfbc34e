"""The semantic cache's vector store on PostgreSQL with pgvector (several replicas share it).

One table, `gatecore_semantic_cache`: the namespace, the key of the non-text parameters and the
vector's width are plain columns filtered in the same query that orders by cosine distance (`<=>`),
behind a b-tree on (ns, params, dims): never a text prefix. Created at first use, under an advisory
lock so replicas starting together do not race.

Search is approximate and fast at scale: each width (up to pgvector's 2,000) gets a partial HNSW
index over `emb::vector(<dims>)` (the column itself has no width, so one table holds every model's
vectors), made the first time a vector of that width is stored. The filters stay exact: they are
the query's WHERE, and `hnsw.iterative_scan = relaxed_order` (pgvector 0.8) makes the index scan go
on until enough rows pass them, instead of returning the nearest rows of other namespaces, filtered
down to nothing. PostgreSQL's planner still picks the b-tree for a small namespace, where an exact
scan of its few rows is cheaper. Relaxed order may return neighbours slightly out of order: they are
sorted here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import asyncpg

_LOCK_ID = 7351919
_NEIGHBOURS = 4
_MAX_INDEXED_DIMS = 2000  # pgvector's limit for an HNSW index over `vector`
_SCHEMA = (
    "CREATE EXTENSION IF NOT EXISTS vector",
    "CREATE TABLE IF NOT EXISTS gatecore_semantic_cache ("
    "entry_id TEXT PRIMARY KEY, ns TEXT NOT NULL, params TEXT NOT NULL, dims INTEGER NOT NULL, "
    "emb vector NOT NULL, answer BYTEA NOT NULL, expires_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS gatecore_semantic_cache_filter ON gatecore_semantic_cache (ns, params, dims)",
)


def _literal(vector: list[float]) -> str:
    return "[" + ",".join(repr(float(v)) for v in vector) + "]"


def _ordered(dims: int) -> tuple[str, str]:
    """The column and the query vector ($1) as the distance is written: cast to the width, the
    expression of that width's HNSW index (its planner matches the expression), where there is one."""
    if dims > _MAX_INDEXED_DIMS:
        return "emb", "$1::vector"
    return f"emb::vector({dims})", f"$1::vector({dims})"


async def _session(conn: Any) -> None:
    """Each connection's settings: an HNSW scan goes on until enough rows pass the filters."""
    await conn.execute("SET hnsw.iterative_scan = relaxed_order")


class PostgresVectorStore:
    """Embeddings of stored answers, per namespace and parameters, in PostgreSQL."""

    name = "postgres"

    def __init__(self, url: str):
        self.url = url
        self._pool: Any = None
        self._indexed: set[int] = set()  # widths whose HNSW index this process made sure of

    async def _ready(self) -> Any:
        if self._pool is None:
            pool = await asyncpg.create_pool(self.url, min_size=1, max_size=4, init=_session)
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
                for statement in _SCHEMA:
                    await conn.execute(statement)
            self._pool = pool
        return self._pool

    async def nearest(
        self, namespace: str, params: str, vector: list[float]
    ) -> list[tuple[str, float, bytes]]:
        pool = await self._ready()
        dims = len(vector)
        emb, query = _ordered(dims)
        rows = await pool.fetch(
            f"SELECT entry_id, 1 - ({emb} <=> {query}) AS similarity, answer FROM gatecore_semantic_cache "
            f"WHERE ns = $2 AND params = $3 AND dims = {dims} AND expires_at > $4 "
            f"ORDER BY {emb} <=> {query} LIMIT $5",
            _literal(vector),
            namespace,
            params,
            time.time(),
            _NEIGHBOURS,
        )
        found = [(str(r[0]), float(r[1]), bytes(r[2])) for r in rows]
        found.sort(key=lambda row: -row[1])  # an iterative scan's order is only nearly sorted
        return found

    async def _index(self, dims: int) -> None:
        """The HNSW index of vectors `dims` wide, made once (under the schema's lock: replicas)."""
        if dims in self._indexed or dims > _MAX_INDEXED_DIMS:
            return
        pool = await self._ready()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS gatecore_semantic_cache_hnsw_{dims} ON gatecore_semantic_cache "
                f"USING hnsw ((emb::vector({dims})) vector_cosine_ops) WHERE dims = {dims}"
            )
        self._indexed.add(dims)

    async def add(
        self,
        namespace: str,
        params: str,
        vector: list[float],
        entry_id: str,
        answer: bytes,
        expires_at: float,
    ) -> None:
        await self._index(len(vector))
        pool = await self._ready()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM gatecore_semantic_cache WHERE ns = $1 AND expires_at < $2",
                namespace,
                time.time(),
            )
            await conn.execute(
                "INSERT INTO gatecore_semantic_cache (entry_id, ns, params, dims, emb, answer, expires_at) "
                "VALUES ($1, $2, $3, $4, $5::vector, $6, $7)",
                entry_id,
                namespace,
                params,
                len(vector),
                _literal(vector),
                answer,
                expires_at,
            )

    async def purge(self, matches: Callable[[bytes], bool], namespace: str | None) -> int:
        pool = await self._ready()
        if namespace is None:
            rows = await pool.fetch("SELECT entry_id, answer FROM gatecore_semantic_cache")
        else:
            rows = await pool.fetch(
                "SELECT entry_id, answer FROM gatecore_semantic_cache WHERE ns = $1", namespace
            )
        doomed = [str(r[0]) for r in rows if matches(bytes(r[1]))]
        if doomed:
            await pool.execute("DELETE FROM gatecore_semantic_cache WHERE entry_id = ANY($1::text[])", doomed)
        return len(doomed)

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
