"""Upgrading to migration 3 (the run export's columns), on SQLite and a real PostgreSQL: a store at
migration 2 with rows, and a spool segment of old-format rows (30 columns) left by a gateway that
died, are taken over by a new gateway: the columns are added, the old rows keep theirs with nulls in
the new ones, the spooled rows are replayed (padded), and runs read them all."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

from gatecore.ledger.row import COLUMNS
from gatecore.store import open_store
from gatecore.store.migrations import MIGRATIONS, migrate

from ..upstreams.openai_mock import MockUpstream
from .conftest import make_client
from .gateway import GatewayFactory
from .ledger_store import ledger_row
from .test_runs import admin_get, runs_config, wait_run

OLD_COLUMNS = COLUMNS[: COLUMNS.index("run_id") + 1]
# Migration 3's columns (those the run export shows; later migrations add more after them).
NEW_COLUMNS = COLUMNS[len(OLD_COLUMNS) : COLUMNS.index("gap_max_ms") + 1]


def old_row(rid: str, run: str) -> list[Any]:
    row = ledger_row(
        id=f"deadbeef:{rid}",
        request_id=rid,
        at=time.time() - 60,
        day=time.strftime("%Y-%m-%d", time.gmtime()),
        model="gpt-run",
        input_tokens=5,
        output_tokens=7,
        latency_ms=80.0,
        ttft_ms=20.0,
        streamed=True,
        run_id=run,
    )
    return list(row[: len(OLD_COLUMNS)])


async def _store_at_migration_2(url: str, rows: list[list[Any]]) -> None:
    store = await open_store(url)
    try:
        saved = MIGRATIONS[:]
        MIGRATIONS[:] = [m for m in saved if m[0] <= 2]
        try:
            assert await migrate(store) == [1, 2]
        finally:
            MIGRATIONS[:] = saved
        marks = ", ".join(f"${i + 1}" for i in range(len(OLD_COLUMNS)))
        async with store.transaction() as tx:
            await tx.execute_many(
                f"INSERT INTO usage_ledger ({', '.join(OLD_COLUMNS)}) VALUES ({marks})", rows
            )
    finally:
        await store.close()


def test_old_rows_and_old_spooled_rows_survive_the_upgrade(
    gateway_factory: GatewayFactory, upstream: MockUpstream, store_url: str, tmp_path: Path
) -> None:
    run = f"upgrade-{uuid.uuid4().hex[:6]}"
    stored, spooled = f"old-stored-{uuid.uuid4().hex[:6]}", f"old-spooled-{uuid.uuid4().hex[:6]}"
    asyncio.run(_store_at_migration_2(store_url, [old_row(stored, run)]))
    spool = tmp_path / "spool"
    spool.mkdir()
    # A segment of a process that is gone (no lock file), in the format written before migration 3.
    (spool / "0badc0de-00000001.jsonl").write_text(json.dumps(old_row(spooled, run)) + "\n")
    config = runs_config(upstream, store_url)
    config["ledger"]["spool_dir"] = str(spool)
    gw = gateway_factory(config)
    with make_client(gw) as client:
        stream = client.chat.completions.create(
            model="gpt-run",
            messages=[{"role": "user", "content": "after the upgrade"}],
            stream=True,
            extra_headers={"x-request-id": "new-one", "x-gatecore-run-id": run},
            extra_body={"mock": {"chunks": 3, "gap_ms": 2}},
        )
        assert len(list(stream)) > 3
    summary = wait_run(gw, run, 3)
    assert summary["requests"] == 3 and summary["errors"] == 0
    assert summary["overhead_ms"]["count"] == 1  # only the new row has the figure
    status, _, body = admin_get(gw, f"/runs/{run}/requests?format=json")
    rows = {r["request_id"]: r for r in json.loads(body)["data"]}
    assert status == 200 and set(rows) == {stored, spooled, "new-one"}
    for rid in (stored, spooled):
        assert rows[rid]["output_tokens"] == 7 and rows[rid]["ttft_ms"] == 20.0
        assert all(rows[rid][c] is None for c in NEW_COLUMNS), rid
    assert rows["new-one"]["chunk_gaps"] is not None and rows["new-one"]["overhead_ms"] is not None
    assert not list(spool.glob("*.jsonl"))  # replayed, then removed
