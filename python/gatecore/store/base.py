"""The async interface every store backend implements.

SQL is written once, PostgreSQL-style (`$1` placeholders, portable types); the SQLite backend rewrites
the placeholders. Rows come back as tuples in column order.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

Row = tuple[Any, ...]


class StoreError(Exception):
    """The store could not be reached or refused a statement."""


class ConstraintViolation(StoreError):
    """A unique or foreign-key constraint refused a write."""


class ValueOutOfRange(StoreError):
    """A value the store's column cannot hold (an integer beyond 64 bits): the caller's mistake, not
    an outage."""


class Transaction(Protocol):
    """Statements run inside one transaction (committed on a clean exit, rolled back on an error)."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; return the number of rows it changed."""
        ...

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchone(self, sql: str, *args: Any) -> Row | None: ...

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per row of arguments: the statement is prepared once (batches)."""
        ...


class Store(Protocol):
    """A database holding gatecore's state."""

    dialect: str  # "sqlite" | "postgresql"

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A write transaction; SQLite takes its write lock at the start (BEGIN IMMEDIATE)."""
        ...

    def read_transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """Reads that see one consistent state, without taking a write lock."""
        ...

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """Rows of one read, outside any explicit transaction."""
        ...

    async def fetchone(self, sql: str, *args: Any) -> Row | None: ...

    async def close(self) -> None: ...
