"""The ledger's spool and writer against real files and a real SQLite store: segments of live
processes are left alone, those of gone ones are claimed once, torn lines are skipped, a store that is
missing at start is retried and the spool replayed into it, and an overfull queue spills to disk."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from gatecore.config.schema import LedgerConfig
from gatecore.ledger.recorder import LedgerRecorder
from gatecore.ledger.row import COLUMNS
from gatecore.ledger.spool import Spool
from gatecore.pricing import PriceBook
from gatecore.request import CHAT, RequestContext, Usage


def _row(n: int) -> tuple[object, ...]:
    return tuple(f"r{n}" if c in ("id", "request_id") else n for c in COLUMNS)


def test_live_segments_stay_and_gone_ones_are_claimed_once(tmp_path: Path) -> None:
    async def run() -> None:
        alive, gone = Spool(tmp_path, "aaaa"), Spool(tmp_path, "bbbb")
        first, second = Spool(tmp_path, "cccc"), Spool(tmp_path, "dddd")
        for spool in (alive, gone, first, second):
            await spool.open()
        await alive.append([_row(1)])
        await gone.append([_row(2), _row(3)])
        await gone.close()  # its process ended: lock released, segment left behind
        claimed = await first.ready_segments()
        assert [await first.read(p) for p in claimed] == [[_row(2), _row(3)]]
        assert all(p.name.startswith("cccc-") for p in claimed)
        assert await second.ready_segments() == []  # claimed already; `alive` is still alive
        assert not (tmp_path / "bbbb.lock").exists()
        # The live process's own segments become ready to it once sealed.
        assert [await alive.read(p) for p in await alive.ready_segments()] == [[_row(1)]]
        for spool in (alive, first, second):
            await spool.close()

    asyncio.run(run())


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "eeee")

    async def write() -> Path:
        await spool.open()
        await spool.append([_row(1), _row(2)])
        [segment] = await spool.ready_segments()
        return segment

    segment = asyncio.run(write())
    with open(segment, "ab") as f:
        f.write(b'["r3", "r3", 1.0')  # a crash in the middle of a write

    async def read() -> None:
        assert await spool.read(segment) == [_row(1), _row(2)]
        await spool.close()

    asyncio.run(read())


def _ctx(n: int) -> RequestContext:
    ctx = RequestContext(CHAT, f"req-{n}", b"", time.perf_counter_ns())
    ctx.client_model = "m"
    ctx.status = 200
    ctx.usage = Usage(10, 5)
    return ctx


def _count(db: Path) -> int:
    """Rows in the ledger table (0 while the store is still being created)."""
    with sqlite3.connect(db) as conn:
        try:
            (count,) = conn.execute("SELECT COUNT(*) FROM usage_ledger").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(count)


def test_store_missing_at_start_is_retried_and_the_spool_replayed(tmp_path: Path) -> None:
    db = tmp_path / "later" / "ledger.db"  # its directory does not exist yet: the store cannot open
    config = LedgerConfig(
        spool_dir=str(tmp_path / "spool"), flush_interval_s=0.02, retry_interval_s=0.05, write_timeout_s=1.0
    )

    async def run() -> None:
        recorder = LedgerRecorder(config, PriceBook(), f"sqlite:///{db}")
        await recorder.start(None)
        for n in range(30):
            recorder.record(_ctx(n), time.perf_counter_ns())
        await asyncio.sleep(0.3)
        assert list((tmp_path / "spool").glob("*.jsonl")), "rows wait in the spool"
        db.parent.mkdir()
        for n in range(30, 40):
            recorder.record(_ctx(n), time.perf_counter_ns())
        for _ in range(100):  # the retry opens the store and replays within a few intervals
            await asyncio.sleep(0.05)
            if db.exists() and _count(db) == 40:
                break
        await recorder.aclose()

    asyncio.run(run())
    assert _count(db) == 40
    assert list((tmp_path / "spool").glob("*.jsonl")) == []


def test_an_overfull_queue_spills_to_the_spool_and_close_flushes(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    config = LedgerConfig(
        spool_dir=str(tmp_path / "spool"), batch_rows=10, max_queue_rows=20, flush_interval_s=5
    )

    async def run() -> None:
        recorder = LedgerRecorder(config, PriceBook(), f"sqlite:///{db}")
        await recorder.start(None)  # opens the store itself at its first retry
        for n in range(45):  # no await: the writer cannot run, so the queue overflows twice
            recorder.record(_ctx(n), time.perf_counter_ns())
        await recorder.spool.drain()
        spilled = [len(await recorder.spool.read(p)) for p in sorted((tmp_path / "spool").glob("*.jsonl"))]
        assert sum(spilled) == 40
        await recorder.aclose()  # the last 5 rows, and the spool replayed before them

    asyncio.run(run())
    assert _count(db) == 45
