"""The usage ledger in the store: batched inserts, usage reports grouped by key/team/…, spend sums."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

import msgspec

from gatecore._core import SqliteRowWriter
from gatecore.ledger.row import COLUMNS, Row
from gatecore.ledger.sqlite_rows import open_row_writer
from gatecore.store import Store
from gatecore.store.sqlite import SqliteStore

# group_by → (group column, display-name column)
GROUPS: dict[str, tuple[str, str]] = {
    "key": ("key_id", "key_name"),
    "team": ("team_id", "team_name"),
    "user": ("user_id", "user_name"),
    "org": ("org_id", "org_name"),
    "model": ("model", "model"),
    "deployment": ("deployment", "deployment"),
    "day": ("day", "day"),
}
# Budget scopes (limits/) → the column they sum over.
SCOPE_COLUMNS = {"key": "key_id", "user": "user_id", "team": "team_id", "org": "org_id", "model": "model"}
# A request counts as an error when it was answered with an error status or its stream broke.
_ERROR = "CASE WHEN status >= 400 OR error_type IS NOT NULL THEN 1 ELSE 0 END"


class UsageGroup(msgspec.Struct, frozen=True):
    """One line of a usage report (DESIGN.md §3)."""

    group: str | None
    name: str | None
    requests: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: float
    errors: int


def _insert_sql(rows: int) -> str:
    """An INSERT of `rows` rows; a row whose id is already there is skipped."""
    width = len(COLUMNS)
    values = ", ".join(
        f"({', '.join(f'${row * width + i + 1}' for i in range(width))})" for row in range(rows)
    )
    return f"INSERT INTO usage_ledger ({', '.join(COLUMNS)}) VALUES {values} ON CONFLICT (id) DO NOTHING"


# Rows per statement: a batch goes in as statements of CHUNK_ROWS rows (the rest one by one), each
# prepared once (the statement text never changes). 50 rows of 36 parameters stays far under SQLite's
# and PostgreSQL's limit (32766). Through Python's sqlite3 a row then costs 6 µs instead of 7.5 in
# isolation, and in the server more is saved: sqlite3 takes the GIL back after every statement, so
# row-by-row inserts hand the GIL to and from the event loop twice a row. On SQLite the rows go in
# through SqliteRowWriter (ledger/sqlite_rows.py) when it can attach, with the GIL released.
CHUNK_ROWS = 50
INSERT_ONE_SQL = _insert_sql(1)
INSERT_CHUNK_SQL = _insert_sql(CHUNK_ROWS)


class LedgerRepository:
    """Reads and writes of the `usage_ledger` table."""

    def __init__(self, store: Store, native_sqlite: bool = True):
        self.store = store
        # SQLite: the native writer (None when it cannot attach, or `native_sqlite` is False: then
        # sqlite3 is used), opened at the first insert, on the store's thread.
        self._rows: SqliteRowWriter | None = None
        self._rows_opened = not native_sqlite

    @property
    def native(self) -> bool:
        """Whether inserts go through the native SQLite writer."""
        return self._rows is not None

    def close(self) -> None:
        """Close the native writer's connection, if one was opened."""
        if self._rows is not None:
            self._rows.close()
            self._rows = None

    async def insert(self, rows: Sequence[Row]) -> None:
        """Insert rows in one transaction; rows already there (same id) are left as they are."""
        store = self.store
        if isinstance(store, SqliteStore):
            if not self._rows_opened:
                self._rows_opened = True
                path, width = store.path, len(COLUMNS)
                self._rows = await store.run_alone(
                    lambda: open_row_writer(path, INSERT_ONE_SQL, INSERT_CHUNK_SQL, CHUNK_ROWS, width)
                )
            writer = self._rows
            if writer is not None:
                batch = rows if isinstance(rows, list) else list(rows)
                await store.run_alone(lambda: writer.insert(batch))
                return
        whole = len(rows) - len(rows) % CHUNK_ROWS
        chunks = [tuple(chain.from_iterable(rows[i : i + CHUNK_ROWS])) for i in range(0, whole, CHUNK_ROWS)]
        async with self.store.transaction() as tx:
            if chunks:
                await tx.execute_many(INSERT_CHUNK_SQL, chunks)
            if whole < len(rows):
                await tx.execute_many(INSERT_ONE_SQL, rows[whole:])

    async def usage(
        self, group_by: str, since: float | None, until: float | None, team_id: str | None = None
    ) -> list[UsageGroup]:
        """Totals per `group_by` value of rows with `since <= at < until`, only `team_id`'s if given,
        most expensive first."""
        column, name = GROUPS[group_by]
        where, args = _filters(since, until, team_id)
        sql = (
            f"SELECT {column}, MAX({name}), COUNT(*), SUM(input_tokens), SUM(output_tokens), "
            f"SUM(cached_tokens), SUM(cost_usd), SUM({_ERROR}) FROM usage_ledger{where} "
            f"GROUP BY {column} ORDER BY {'1' if group_by == 'day' else '7 DESC, 1'}"
        )
        rows = await self.store.fetch(sql, *args)
        return [
            UsageGroup(
                group=row[0],
                name=row[1],
                requests=int(row[2]),
                input_tokens=int(row[3] or 0),
                output_tokens=int(row[4] or 0),
                cached_tokens=int(row[5] or 0),
                cost_usd=round(float(row[6] or 0.0), 9),
                errors=int(row[7] or 0),
            )
            for row in rows
        ]

    async def spend_since(
        self, scope_kind: str, scope_id: str, since_epoch: float, until_epoch: float | None = None
    ) -> float:
        """USD spent by one key, user, team, org or model (`scope_kind`) since `since_epoch` (and
        before `until_epoch`, when given)."""
        column = SCOPE_COLUMNS[scope_kind]
        until = "" if until_epoch is None else " AND at < $3"
        match = f"{column} = $1"
        if scope_kind == "model" and scope_id.endswith("*"):
            # A wildcard route's budget: the ledger keeps the model each client asked for under it.
            scope_id = scope_id[:-1]
            match = f"substr({column}, 1, {len(scope_id)}) = $1"
        row = await self.store.fetchone(
            f"SELECT SUM(cost_usd) FROM usage_ledger WHERE {match} AND at >= $2{until}",
            scope_id,
            since_epoch,
            *(() if until_epoch is None else (until_epoch,)),
        )
        return float(row[0] or 0.0) if row is not None else 0.0

    async def rows(self, where: str = "", *args: Any) -> list[dict[str, Any]]:
        """Rows as dicts (tests and tools), ordered by arrival; `where` is a SQL condition."""
        sql = f"SELECT {', '.join(COLUMNS)} FROM usage_ledger"
        if where:
            sql += f" WHERE {where}"
        records = await self.store.fetch(sql + " ORDER BY at", *args)
        return [dict(zip(COLUMNS, record, strict=True)) for record in records]


def _filters(since: float | None, until: float | None, team_id: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for clause, value in (("at >= ", since), ("at < ", until), ("team_id = ", team_id)):
        if value is not None:
            args.append(value)
            clauses.append(f"{clause}${len(args)}")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args
