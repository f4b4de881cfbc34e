"""The ledger's batched INSERT on SQLite (through the native writer and through sqlite3) and a real
PostgreSQL: batches of every size around the statement's chunk of rows go in whole, values as given
(nulls, booleans, floats, text), and rows already there are skipped, never doubled or overwritten (a
spooled batch replayed after it landed)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from gatecore._core import SqliteRowWriter
from gatecore.ledger.repository import CHUNK_ROWS, LedgerRepository
from gatecore.ledger.row import COLUMNS, Row
from gatecore.ledger.sqlite_rows import loaded_sqlite_library
from gatecore.store import StoreError, open_store
from gatecore.store.migrations import migrate

from ..services.postgres import PostgresServer
from .ledger_store import ledger_row


def ledger_rows(first: int, count: int) -> list[Row]:
    rows = []
    for i in range(first, first + count):
        row = ledger_row(
            id=f"t:{i:x}",
            request_id=f"req-{i}",
            at=1_790_000_000.0 + i,
            day="2026-09-21",
            key_id=f"key-{i % 3}" if i % 4 else None,
            model="gpt-x",
            input_tokens=i,
            output_tokens=2 * i,
            cached_tokens=i % 5,
            cost_usd=i / 1000,
            status=200 if i % 7 else 502,
            error_type=None if i % 7 else "upstream_error",
            latency_ms=10.5 + i,
            ttft_ms=None if i % 2 else 1.25,
            streamed=bool(i % 2),
            client_gone=i % 9 == 0,
        )
        rows.append(row)
    return rows


@pytest.fixture(params=["sqlite", "sqlite-through-sqlite3", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, bool]:
    """A store URL and whether SQLite rows go through the native writer: SQLite both ways (the
    writer, and Python's sqlite3, its fallback), then a fresh PostgreSQL database."""
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        return server.create_database(), True
    return f"sqlite:///{tmp_path / 'store.db'}", request.param == "sqlite"


async def insert_and_read(store_url: str, batches: list[list[Row]], native: bool) -> list[tuple[Any, ...]]:
    store = await open_store(store_url)
    try:
        await migrate(store)
        repository = LedgerRepository(store, native_sqlite=native)
        for batch in batches:
            await repository.insert(batch)
        # Where SQLite is a shared library (this machine's Python), the native path is the one taken.
        assert repository.native == (native and store_url.startswith("sqlite"))
        repository.close()
        return await store.fetch(
            "SELECT id, key_id, input_tokens, cost_usd, status, error_type, ttft_ms, streamed, client_gone "
            "FROM usage_ledger ORDER BY input_tokens"
        )
    finally:
        await store.close()


def expected(rows: list[Row]) -> list[tuple[Any, ...]]:
    names = (
        "id",
        "key_id",
        "input_tokens",
        "cost_usd",
        "status",
        "error_type",
        "ttft_ms",
        "streamed",
        "client_gone",
    )
    picks = [COLUMNS.index(name) for name in names]
    return [
        tuple(row[i] for i in picks)
        for row in sorted(rows, key=lambda row: row[COLUMNS.index("input_tokens")])
    ]


@pytest.mark.parametrize("size", [1, CHUNK_ROWS - 1, CHUNK_ROWS, CHUNK_ROWS + 1, 3 * CHUNK_ROWS + 7])
def test_every_batch_size_goes_in_whole(target: tuple[str, bool], size: int) -> None:
    store_url, native = target
    rows = ledger_rows(0, size)
    stored = asyncio.run(insert_and_read(store_url, [rows], native))
    got = [tuple(bool(v) if i in (7, 8) else v for i, v in enumerate(row)) for row in stored]
    assert got == expected(rows)


def test_rows_already_there_are_skipped_not_doubled(target: tuple[str, bool]) -> None:
    store_url, native = target
    first = ledger_rows(0, 2 * CHUNK_ROWS + 3)
    # A replay: the same rows (one changed, which must not win) mixed with new ones, in both the
    # chunked and the one-by-one part of the batch.
    changed = list(first[5])
    changed[COLUMNS.index("cost_usd")] = 99.0
    replay = [tuple(changed), *first[1 : CHUNK_ROWS + 10], *ledger_rows(1000, CHUNK_ROWS + 2)]
    stored = asyncio.run(insert_and_read(store_url, [first, replay], native))
    assert len(stored) == len(first) + CHUNK_ROWS + 2
    assert len({row[0] for row in stored}) == len(stored)
    by_id = {row[0]: row for row in stored}
    assert by_id[first[5][0]][3] == first[5][COLUMNS.index("cost_usd")]


async def spend_plans(store_url: str) -> dict[str, str]:
    store = await open_store(store_url)
    try:
        await migrate(store)
        plans = {}
        async with store.transaction() as tx:
            if store.dialect == "postgresql":
                await tx.execute("SET LOCAL enable_seqscan = off")  # an empty table: scanning is cheaper
            for column in ("user_id", "team_id"):
                sql = f"SELECT SUM(cost_usd) FROM usage_ledger WHERE {column} = $1 AND at >= $2"
                explain = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
                plans[column] = " ".join(str(row[-1]) for row in await tx.fetch(explain + sql, "u", 1.0))
            for index in ("usage_ledger_user_at", "usage_ledger_team_at"):
                definition = (
                    "SELECT sql FROM sqlite_master WHERE name = $1"
                    if store.dialect == "sqlite"
                    else "SELECT indexdef FROM pg_indexes WHERE indexname = $1"
                )
                plans[index] = str((await tx.fetch(definition, index))[0][0])
        return plans
    finally:
        await store.close()


def test_budget_lookups_by_user_and_team_use_the_partial_indexes(store_url: str) -> None:
    # Migration 4 made them partial (no entry for rows without a user or team); a spend lookup
    # still finds them: `user_id = $1` implies the index's NOT NULL.
    plans = asyncio.run(spend_plans(store_url))
    assert "WHERE user_id IS NOT NULL" in plans["usage_ledger_user_at"].replace("(", "").replace(")", "")
    assert "WHERE team_id IS NOT NULL" in plans["usage_ledger_team_at"].replace("(", "").replace(")", "")
    assert "usage_ledger_user_at" in plans["user_id"]
    assert "usage_ledger_team_at" in plans["team_id"]


def test_the_native_writer_attaches_only_to_the_loaded_sqlite(tmp_path: Path) -> None:
    library = loaded_sqlite_library()
    assert library is not None and "libsqlite3.so" in library
    # A library that is not loaded in this process is refused (RTLD_NOLOAD), never loaded beside it.
    copy = tmp_path / "libsqlite3.so.0"
    shutil.copyfile(library, copy)
    with pytest.raises(OSError, match="not loaded"):
        SqliteRowWriter(str(copy), str(tmp_path / "x.db"), "SELECT 1", "SELECT 1", 1, 1)
    # Without a mapped libsqlite3 (a Python with SQLite linked in), no writer: sqlite3 is used.
    maps = tmp_path / "maps"
    maps.write_text("7f0000000000-7f0000001000 r--p 00000000 00:00 0  /usr/lib/libc.so.6\n")
    assert loaded_sqlite_library(str(maps)) is None


def test_a_failed_batch_leaves_nothing_and_names_the_cause(tmp_path: Path) -> None:
    async def run() -> tuple[str, int]:
        store = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
        try:
            await migrate(store)
            repository = LedgerRepository(store)
            rows = ledger_rows(0, CHUNK_ROWS + 2)
            broken = list(rows[-1])
            broken[COLUMNS.index("model")] = None  # NOT NULL: the whole batch must roll back
            rows[-1] = tuple(broken)
            with pytest.raises(StoreError) as failure:
                await repository.insert(rows)
            assert repository.native
            repository.close()
            count = await store.fetchone("SELECT COUNT(*) FROM usage_ledger")
            assert count is not None
            return str(failure.value), int(count[0])
        finally:
            await store.close()

    message, count = asyncio.run(run())
    assert "NOT NULL" in message and count == 0
