"""PostgreSQL backend (asyncpg): what several replicas share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg

from gatecore.store.base import ConstraintViolation, Row, StoreError, ValueOutOfRange

T = TypeVar("T")


def _rows(records: list[asyncpg.Record]) -> list[Row]:
    return [tuple(record) for record in records]


class PostgresTransaction:
    """Statements of one transaction on one pooled connection."""

    def __init__(self, conn: asyncpg.Connection):
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        status: str = await _run(self._conn.execute(sql, *args))
        # asyncpg returns the command tag, e.g. "UPDATE 3".
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return _rows(await _run(self._conn.fetch(sql, *args)))

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        record = await _run(self._conn.fetchrow(sql, *args))
        return None if record is None else tuple(record)

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await _run(self._conn.executemany(sql, rows))


class PostgresStore:
    """gatecore's state in PostgreSQL, through a small connection pool."""

    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool):
        self._pool = pool

    @classmethod
    async def open(cls, url: str, pool_size: int = 4, statement_timeout_s: float = 0.0) -> PostgresStore:
        settings = (
            {"statement_timeout": str(int(statement_timeout_s * 1000))} if statement_timeout_s else None
        )
        try:
            pool = await asyncpg.create_pool(
                url, min_size=1, max_size=pool_size, timeout=10.0, server_settings=settings
            )
        except (OSError, asyncpg.PostgresError) as exc:
            # The URL may hold a password: name only the error's kind and reason.
            raise StoreError(f"cannot connect to PostgreSQL: {type(exc).__name__}: {exc}") from None
        return cls(pool)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTransaction]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield PostgresTransaction(conn)

    @asynccontextmanager
    async def read_transaction(self) -> AsyncIterator[PostgresTransaction]:
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield PostgresTransaction(conn)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return _rows(await _run(self._pool.fetch(sql, *args)))

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        record = await _run(self._pool.fetchrow(sql, *args))
        return None if record is None else tuple(record)

    async def close(self) -> None:
        await self._pool.close()


async def _run(pending: Awaitable[T]) -> T:
    """Await an asyncpg call, mapping its errors onto the store's."""
    try:
        return await pending
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise ConstraintViolation(str(exc)) from None
    except asyncpg.DataError as exc:  # a value the column cannot hold (an integer beyond 64 bits)
        raise ValueOutOfRange(f"{type(exc).__name__}: {exc}") from None
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise StoreError(f"{type(exc).__name__}: {exc}") from None
