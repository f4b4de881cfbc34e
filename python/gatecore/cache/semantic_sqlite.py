"""The semantic cache's vector store on SQLite with the sqlite-vec extension (`vec0` tables).

Python's own `sqlite3` may be built without extension loading (it is here), so the store opens its
file with APSW, which always can. One table per embedding width (`sem_<dims>`): the namespace is its
partition key and the request's non-text parameters an equality-filtered metadata column, so both
are filters inside the KNN query itself, never a text prefix. Every call runs on the store's own
thread (SQLite is synchronous); the loop only awaits it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import apsw
import sqlite_vec

_NEIGHBOURS = 4  # nearest entries read per lookup: the first live one above the threshold wins
_BUSY_MS = 2000


class SqliteVectorStore:
    """Embeddings of stored answers, per namespace and parameters."""

    name = "sqlite"

    def __init__(self, path: str):
        self.path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gatecore-semantic")
        self._db: Any = None
        self._tables: set[int] = set()

    def _connection(self) -> Any:
        if self._db is None:
            db = apsw.Connection(self.path)
            db.enable_load_extension(True)
            db.load_extension(sqlite_vec.loadable_path())
            db.enable_load_extension(False)
            db.set_busy_timeout(_BUSY_MS)
            db.execute("PRAGMA journal_mode=WAL")
            self._db = db
        return self._db

    def _table(self, dims: int) -> str:
        name = f"sem_{dims}"
        if dims not in self._tables:
            self._connection().execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING vec0("
                f"ns TEXT PARTITION KEY, params TEXT, emb float[{dims}] distance_metric=cosine, "
                "+entry_id TEXT, +answer BLOB, +expires_at FLOAT)"
            )
            self._tables.add(dims)
        return name

    async def _run(self, call: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call, *args)

    async def nearest(
        self, namespace: str, params: str, vector: list[float]
    ) -> list[tuple[str, float, bytes]]:
        """`(entry id, cosine similarity, answer)` of the live entries nearest `vector` among those of
        `namespace` with exactly `params`, most similar first."""
        return list(await self._run(self._nearest, namespace, params, vector))

    def _nearest(self, namespace: str, params: str, vector: list[float]) -> list[tuple[str, float, bytes]]:
        table = self._table(len(vector))
        rows = self._connection().execute(
            f"SELECT entry_id, distance, answer, expires_at FROM {table} "
            "WHERE emb MATCH ? AND k = ? AND ns = ? AND params = ? ORDER BY distance",
            (sqlite_vec.serialize_float32(vector), _NEIGHBOURS, namespace, params),
        )
        now = time.time()
        return [(str(i), 1.0 - float(d), bytes(a)) for i, d, a, expires in rows if expires > now]

    async def add(
        self,
        namespace: str,
        params: str,
        vector: list[float],
        entry_id: str,
        answer: bytes,
        expires_at: float,
    ) -> None:
        await self._run(self._add, namespace, params, vector, entry_id, answer, expires_at)

    def _add(
        self,
        namespace: str,
        params: str,
        vector: list[float],
        entry_id: str,
        answer: bytes,
        expires_at: float,
    ) -> None:
        table = self._table(len(vector))
        db = self._connection()
        with db:
            db.execute(f"DELETE FROM {table} WHERE ns = ? AND expires_at < ?", (namespace, time.time()))
            db.execute(
                f"INSERT INTO {table} (ns, params, emb, entry_id, answer, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (namespace, params, sqlite_vec.serialize_float32(vector), entry_id, answer, expires_at),
            )

    async def purge(self, matches: Callable[[bytes], bool], namespace: str | None) -> int:
        """Drop the rows whose answer `matches` accepts (of `namespace` only, when given)."""
        return int(await self._run(self._purge, matches, namespace))

    def _purge(self, matches: Callable[[bytes], bool], namespace: str | None) -> int:
        db = self._connection()
        tables = [
            str(row[0])
            for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'sem_[0-9]*'"
            )
            if str(row[0]).removeprefix("sem_").isdigit()
        ]
        dropped = 0
        with db:
            for table in tables:
                where, args = ("WHERE ns = ?", (namespace,)) if namespace is not None else ("", ())
                doomed = [
                    rowid
                    for rowid, answer in db.execute(f"SELECT rowid, answer FROM {table} {where}", args)
                    if matches(bytes(answer))
                ]
                for rowid in doomed:
                    db.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))
                dropped += len(doomed)
        return dropped

    async def aclose(self) -> None:
        await self._run(self._close)
        self._thread.shutdown(wait=False)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
