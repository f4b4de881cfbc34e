"""The semantic cache's vector store on PostgreSQL with pgvector (several replicas share it).

One table, `gatecore_semantic_cache`: the namespace, the key of the non-text parameters and the
vector's width are plain columns filtered in the same query that orders by cosine distance (`<=>`),
behind a b-tree on (ns, params, dims): never a text prefix. Created at first use, under an advisory
lock so replicas starting together do not race.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import asyncpg

_LOCK_ID = 7351919
_NEIGHBOURS = 4
_SCHEMA = (
    "CREATE EXTENSION IF NOT EXISTS vector",
    "CREATE TABLE IF NOT EXISTS gatecore_semantic_cache ("
    "entry_id TEXT PRIMARY KEY, ns TEXT NOT NULL, params TEXT NOT NULL, dims INTEGER NOT NULL, "
    "emb vector NOT NULL, answer BYTEA NOT NULL, expires_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS gatecore_semantic_cache_filter ON gatecore_semantic_cache (ns, params, dims)",
)


def _literal(vector: list[float]) -> str:
    return "[" + ",".join(repr(float(v)) for v in vector) + "]"


class PostgresVectorStore:
    """Embeddings of stored answers, per namespace and parameters, in PostgreSQL."""

    name = "postgres"

    def __init__(self, url: str):
        self.url = url
        self._pool: Any = None

    async def _ready(self) -> Any:
        if self._pool is None:
            pool = await asyncpg.create_pool(self.url, min_size=1, max_size=4)
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
        rows = await pool.fetch(
            "SELECT entry_id, 1 - (emb <=> $1::vector) AS similarity, answer FROM gatecore_semantic_cache "
            "WHERE ns = $2 AND params = $3 AND dims = $4 AND expires_at > $5 "
            "ORDER BY emb <=> $1::vector LIMIT $6",
            _literal(vector),
            namespace,
            params,
            len(vector),
            time.time(),
            _NEIGHBOURS,
        )
        return [(str(r[0]), float(r[1]), bytes(r[2])) for r in rows]

    async def add(
        self,
        namespace: str,
        params: str,
        vector: list[float],
        entry_id: str,
        answer: bytes,
        expires_at: float,
    ) -> None:
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
