"""The hourly usage rollup (store migration 16) the console's totals read, on SQLite and a real
PostgreSQL: an upgrade backfills it from the rows already there, every ledger insert adds to it
through the store's own trigger, a replayed row (the ledger's `ON CONFLICT DO NOTHING`) counts once,
and two writers adding rows of the same groups at once, in opposite orders, neither deadlock nor
lose a row. Each check compares the rollup with the same sums computed from the ledger itself."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gatecore.ledger.repository import LedgerRepository
from gatecore.ledger.row import Row
from gatecore.store import open_store
from gatecore.store.base import Store
from gatecore.store.migrations import MIGRATIONS, migrate

from .ledger_store import ledger_row

HOUR = 3600.0
# What the rollup keeps per group, computed from the ledger (the rollup's meaning, written apart).
FROM_LEDGER = (
    "SELECT {hour}, COALESCE(team_id, ''), model, COALESCE(deployment, ''), day, COUNT(*), "
    "SUM(CASE WHEN status >= 400 OR error_type IS NOT NULL THEN 1 ELSE 0 END), SUM(input_tokens), "
    "SUM(output_tokens), SUM(cost_usd) FROM usage_ledger GROUP BY 1, 2, 3, 4, 5"
)
FROM_ROLLUP = (
    "SELECT hour, team_id, model, deployment, day, requests, errors, input_tokens, output_tokens, "
    "cost_usd FROM usage_hourly"
)


def rows(prefix: str, count: int, base: float, models: tuple[str, ...]) -> list[Row]:
    """`count` rows over three hours from `base`, in two teams (one row in three teamless), the models
    in the order given, one in seven an error."""
    out = []
    for n in range(count):
        at = base + (n % 3) * HOUR + n
        team = (None, "team_a", "team_b")[n % 3]
        out.append(
            ledger_row(
                id=f"{prefix}:{n}",
                request_id=f"{prefix}-{n}",
                at=at,
                day=time.strftime("%Y-%m-%d", time.gmtime(at)),
                team_id=team,
                team_name=None if team is None else team.upper(),
                model=models[n % len(models)],
                deployment=None if n % 5 == 0 else f"dep/{models[n % len(models)]}",
                input_tokens=n % 17,
                output_tokens=n % 29,
                cost_usd=(n % 11) * 0.00125,
                status=500 if n % 7 == 0 else 200,
                latency_ms=10.0,
            )
        )
    return out


async def _groups(store: Store, sql: str) -> set[tuple[Any, ...]]:
    hour = "CAST(at / 3600 AS INTEGER)" if store.dialect == "sqlite" else "FLOOR(at / 3600)::BIGINT"
    fetched = await store.fetch(sql.format(hour=hour))
    # Numbers as floats rounded well below a row's cost (sums added in another order differ in the last
    # bits), texts as they are.
    return {tuple(v if v is None or isinstance(v, str) else round(float(v), 9) for v in r) for r in fetched}


async def _assert_rollup_is_the_ledger(store: Store) -> int:
    ledger = await _groups(store, FROM_LEDGER)
    rollup = await _groups(store, FROM_ROLLUP)
    assert rollup == ledger
    return sum(int(g[5]) for g in ledger)


async def _check(url: str) -> None:
    base = (time.time() // HOUR - 5) * HOUR
    store = await open_store(url)
    try:
        # A store at migration 15 with rows: the upgrade fills the rollup from them.
        saved = MIGRATIONS[:]
        MIGRATIONS[:] = [m for m in saved if m[0] < 16]
        try:
            await migrate(store)
        finally:
            MIGRATIONS[:] = saved
        await LedgerRepository(store).insert(rows("old", 120, base, ("m1", "m2")))
        assert await migrate(store) == [16]
        assert await _assert_rollup_is_the_ledger(store) == 120

        # New rows through the ledger's own writer; then a replay of some of them (a spool written
        # twice) and new ones in the same batch: the replayed ones are skipped by the ledger and the
        # rollup alike.
        ledger = LedgerRepository(store)
        fresh = rows("new", 200, base, ("m2", "m3"))
        await ledger.insert(fresh)
        await ledger.insert(fresh[:150] + rows("more", 30, base, ("m1",)))
        assert await _assert_rollup_is_the_ledger(store) == 350
        ledger.close()

        # Two writers at once, each its own connection, the same groups in opposite orders.
        other = await open_store(url)
        try:
            one, two = LedgerRepository(store), LedgerRepository(other)
            batches = [rows(f"c{i}", 100, base, ("m1", "m2", "m3")) for i in range(6)]
            await asyncio.gather(
                *(
                    (one if i % 2 else two).insert(b if i % 2 else list(reversed(b)))
                    for i, b in enumerate(batches)
                )
            )
            one.close()
            two.close()
        finally:
            await other.close()
        assert await _assert_rollup_is_the_ledger(store) == 950
    finally:
        await store.close()


def test_the_rollup_is_the_ledger_added_up(store_url: str) -> None:
    asyncio.run(_check(store_url))
