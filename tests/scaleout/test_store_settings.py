"""PostgreSQL per worker: `store.pool_size` bounds the connections a worker holds and
`store.statement_timeout_s` is every connection's server-side `statement_timeout`."""

from __future__ import annotations

import asyncio

import pytest

from gatecore.store import StoreError, open_store

from ..services.postgres import PostgresServer


def test_pool_size_and_statement_timeout(postgres: PostgresServer) -> None:
    url = postgres.create_database()

    async def check() -> None:
        store = await open_store(url, pool_size=2, statement_timeout_s=0.2)
        try:
            assert await store.fetchone("SHOW statement_timeout") == ("200ms",)
            with pytest.raises(StoreError):  # a stuck query is cut by the server
                await store.fetch("SELECT pg_sleep(2)")

            async def hold() -> int:
                async with store.transaction() as tx:
                    row = await tx.fetchone("SELECT pg_backend_pid()")
                    await asyncio.sleep(0.1)
                    assert row is not None
                    return int(row[0])

            pids = await asyncio.gather(*(hold() for _ in range(6)))
            assert len(set(pids)) <= 2  # six transactions at once share the two connections
        finally:
            await store.close()

    asyncio.run(check())
