"""SQLite backend: one connection in WAL mode, used from one dedicated thread.

sqlite3 is synchronous, so every call runs on the store's own thread and the event loop only awaits
it. One asyncio lock keeps a transaction's statements together (a worker writes rarely: admin actions
and the ledger's batches); reads of other workers and processes go on in parallel under WAL.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import os
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, TypeVar

from gatecore.store.base import ConstraintViolation, Row, StoreError, ValueOutOfRange

T = TypeVar("T")

# Python 3.11's sqlite3 binds None and bool through its adapter protocol, which looks for
# `__adapt__`/`__conform__` first when no adapter is registered: 0.3 µs a parameter, a third of a
# ledger row's insert (13 of its 36 values are often null). Registered C callables that return the
# same value SQLite would store (NULL, 0/1) take 0.1 µs. Process-wide, and they change no result.
_NULLS: dict[None, None] = {}
sqlite3.register_adapter(type(None), _NULLS.get)
sqlite3.register_adapter(bool, operator.index)
_PLACEHOLDER = re.compile(r"\$(\d+)")


@lru_cache(maxsize=512)
def sqlite_sql(sql: str) -> str:
    # `$1` → `?1`: sqlite3 numbers parameters the same way.
    return _PLACEHOLDER.sub(r"?\1", sql)


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL unless the file is already in it. The switch needs a moment when no other
    connection writes, and SQLite answers "locked" at once instead of waiting (workers starting
    together, one of them migrating): retry for up to 10 s. Runs once per worker, at start."""
    deadline = time.monotonic() + 10.0
    while db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _private_file(path: str) -> None:
    """Create the database file readable by its owner only (it holds key hashes, e-mails and the
    ledger), or tighten an existing one to that. SQLite gives its -wal and -shm files the database
    file's mode, so they follow."""
    if path == ":memory:" or path.startswith("file:"):
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path + suffix).st_mode & 0o077:
                os.chmod(path + suffix, 0o600)


class SqliteTransaction:
    """Statements of one SQLite transaction, each run on the store's thread."""

    def __init__(self, store: SqliteStore):
        self._store = store

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._store._call(lambda db: db.execute(sqlite_sql(sql), args).rowcount)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._store._call(lambda db: db.execute(sqlite_sql(sql), args).fetchall())

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self._store._call(lambda db: db.execute(sqlite_sql(sql), args).fetchone())
        return row

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._store._call(lambda db: db.executemany(sqlite_sql(sql), rows))


class SqliteStore:
    """gatecore's state in one SQLite file."""

    dialect = "sqlite"

    def __init__(self, db: sqlite3.Connection, executor: ThreadPoolExecutor, path: str):
        self.path = path
        self._db = db
        self._executor = executor
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str) -> SqliteStore:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gatecore-sqlite")

        def connect() -> sqlite3.Connection:
            _private_file(path)
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE … COMMIT).
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
            _use_wal(db)
            db.execute("PRAGMA synchronous=NORMAL")
            # Checkpoint the WAL every 10,000 pages (40 MB), not 1,000: the ledger's index pages are
            # then copied back once per many batches, not per few (5.0 instead of 5.8 µs a row).
            db.execute("PRAGMA wal_autocheckpoint=10000")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=10000")
            return db

        loop = asyncio.get_running_loop()
        try:
            db = await loop.run_in_executor(executor, connect)
        except sqlite3.Error as exc:
            executor.shutdown(wait=False)
            raise StoreError(f"cannot open SQLite database {path!r}: {exc}") from None
        return cls(db, executor, path)

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, self._db)
        except sqlite3.IntegrityError as exc:
            raise ConstraintViolation(str(exc)) from None
        except OverflowError as exc:  # an integer beyond SQLite's 64 bits: the caller's value
            raise ValueOutOfRange(str(exc)) from None
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from None

    async def run_alone(self, fn: Callable[[], T]) -> T:
        """Run `fn` (work on another connection to this database) on the store's thread, between
        this store's transactions: inside one, it would wait for the write lock that transaction
        holds while the transaction waits for the thread. OSError and sqlite3 errors → StoreError."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._executor, fn)
            except (OSError, sqlite3.Error) as exc:
                raise StoreError(str(exc)) from None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTransaction]:
        async with self._span("BEGIN IMMEDIATE") as tx:
            yield tx

    @asynccontextmanager
    async def read_transaction(self) -> AsyncIterator[SqliteTransaction]:
        # A deferred transaction takes no lock until it writes: under WAL it reads one snapshot.
        async with self._span("BEGIN") as tx:
            yield tx

    @asynccontextmanager
    async def _span(self, begin: str) -> AsyncIterator[SqliteTransaction]:
        async with self._lock:
            await self._call(lambda db: db.execute(begin))
            try:
                yield SqliteTransaction(self)
            except BaseException:
                await self._call(lambda db: db.execute("ROLLBACK"))
                raise
            await self._call(lambda db: db.execute("COMMIT"))

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._call(lambda db: db.execute(sqlite_sql(sql), args).fetchall())

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self._call(lambda db: db.execute(sqlite_sql(sql), args).fetchone())
        return row

    async def close(self) -> None:
        await self._call(lambda db: db.close())
        self._executor.shutdown(wait=True)
