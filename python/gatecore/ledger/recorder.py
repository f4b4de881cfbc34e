"""The ledger's recorder: prices each finished request and writes its row to the store in batches.

`record` runs on the request path and only prices the request (setting `ctx.cost_usd` for the
recorders after it) and appends a tuple to a list. A writer task flushes the list every
`flush_interval_s` (or as soon as `batch_rows` are waiting) with one INSERT per batch. Nothing is
lost when the store is slow or down:

- a batch the store refuses, or does not take within `write_timeout_s`, goes to the spool (spool.py)
  and every following batch too, until a retry every `retry_interval_s` replays the spool into the
  store;
- past `max_queue_rows` waiting rows (the writer cannot keep up), rows go straight to the spool;
- at shutdown (`aclose`) the queue is written out, to the store or else to the spool;
- at start, segments left by processes that are gone (a crash, SIGKILL) are replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

from gatecore.config.schema import LedgerConfig
from gatecore.errors import StoreUnavailable
from gatecore.ledger.repository import LedgerRepository
from gatecore.ledger.row import Row, RowMaker, complete_row
from gatecore.ledger.spool import Spool
from gatecore.pricing.book import PriceBook
from gatecore.request import RequestContext
from gatecore.store import Store, StoreError, open_store
from gatecore.store.migrations import migrate
from gatecore.store.open import sqlite_path

log = logging.getLogger("gatecore.ledger")

_SCAN_INTERVAL_S = 30.0  # how often a healthy writer looks for spool segments of dead processes


def default_spool_dir(store_url: str) -> Path:
    """Beside a SQLite file (`<file>.ledger-spool`), else a directory in the temp dir named after the
    store URL (so two gateways on different databases never replay into each other's)."""
    if store_url.startswith("sqlite:///"):
        return Path(sqlite_path(store_url) + ".ledger-spool")
    digest = hashlib.sha256(store_url.encode()).hexdigest()[:16]
    # Per user: another user's spool (or one they created first) is refused, not shared (spool.py).
    return Path(tempfile.gettempdir()) / f"gatecore-ledger-spool-{os.geteuid()}-{digest}"


class LedgerRecorder:
    """One worker's ledger writer (a `Recorder`; the first of `Gateway.recorders`)."""

    def __init__(self, config: LedgerConfig, prices: PriceBook, store_url: str):
        self.config = config
        self.prices = prices
        self.store_url = store_url
        tag = os.urandom(5).hex()
        self.rows = RowMaker(tag)
        spool_dir = Path(config.spool_dir) if config.spool_dir else default_spool_dir(store_url)
        self.spool = Spool(spool_dir, tag)
        self.repository: LedgerRepository | None = None
        self._own_store: Store | None = None  # opened by the recorder when the gateway had none
        self._queue: list[Row] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: asyncio.Task[None] | None = None  # the last insert (it may outlive a timeout)
        self._healthy = False  # the store takes writes: batches go there, not to the spool
        self._retry_at = 0.0
        self._scan_at = 0.0  # next look for segments of sibling workers that died
        self._closing = False

    async def spend_since(
        self, scope_kind: str, scope_id: str, since_epoch: float, until_epoch: float | None = None
    ) -> float:
        """USD the ledger holds for a scope in a period; StoreUnavailable while it cannot read."""
        repository = self.repository
        if repository is None:
            raise StoreUnavailable("The ledger's store is not open yet.")
        try:
            return await repository.spend_since(scope_kind, scope_id, since_epoch, until_epoch)
        except StoreError as exc:
            raise StoreUnavailable(f"The ledger's store is unavailable: {exc}") from None

    async def start(self, store: Store | None) -> None:
        """Start writing (on the worker's loop). With `store` None (it could not be opened) rows are
        spooled and the store is retried."""
        await self.spool.open()
        if store is not None:
            self.repository = LedgerRepository(store)
        # Replay first: segments left by earlier processes, then whatever comes.
        self._healthy = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    def record(self, ctx: RequestContext, finished_ns: int) -> None:
        if ctx.status == 401:
            # No caller: a flood of bad keys must not fill the store; the metrics count them.
            return
        cost = self.prices.cost_usd(ctx, finished_ns)
        ctx.cost_usd = cost
        queue = self._queue
        queue.append(self.rows.row(ctx, finished_ns, cost, self.prices.saved_usd(ctx)))
        if len(queue) >= self.config.batch_rows:
            if len(queue) >= self.config.max_queue_rows:
                # The writer is behind: hand the rows to the spool's thread, never block here.
                self._queue = []
                self.spool.append_soon(queue)
            self._wake.set()

    async def aclose(self) -> None:
        """Write out every row still queued (to the store, else the spool) and stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        else:
            await self._spool_batch(self._take_all())
        await self.spool.close()
        if self.repository is not None and (self._inflight is None or self._inflight.done()):
            self.repository.close()  # else a stuck write still has it; it closes when freed
        if self._own_store is not None:
            await self._own_store.close()

    def _take_all(self) -> list[Row]:
        rows, self._queue = self._queue, []
        return rows

    async def _run(self) -> None:
        interval = self.config.flush_interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            try:
                now = time.monotonic()
                if not self._healthy and (self._closing or now >= self._retry_at):
                    await self._recover()
                elif self._healthy and now >= self._scan_at and not self._closing:
                    await self._recover()  # a worker that crashed while this one serves left rows
                await self._flush()
            except Exception:  # the writer must outlive any surprise; rows stay queued
                log.exception("ledger writer error")
            if self._closing:
                await self._flush(final=True)
                return

    async def _flush(self, final: bool = False) -> None:
        batch_rows = self.config.batch_rows
        while self._queue:
            batch = self._queue[:batch_rows]
            del self._queue[:batch_rows]
            if self._healthy and await self._write(batch):
                # What came in during the write waits for a full batch or the next interval:
                # draining it at once made batches of a few dozen rows under load, each paying a
                # batch's fixed cost (a task, a thread hand-off), about 1.5 µs a request in all.
                if not final and len(self._queue) < batch_rows:
                    self._wake.clear()  # a wake set while writing asked for what was just written
                    return
                continue
            await self._spool_batch(batch)
            if final:
                await self._spool_batch(self._take_all())

    async def _write(self, rows: list[Row]) -> bool:
        """Insert rows; on failure mark the store unavailable (rows are the caller's to spool)."""
        repository = self.repository
        if repository is None or (self._inflight is not None and not self._inflight.done()):
            return False  # an earlier write is still stuck in the store
        task = asyncio.get_running_loop().create_task(repository.insert(rows))
        task.add_done_callback(_retrieve)
        self._inflight = task
        # Not wait_for: a write stuck on a lock would hold us until the store gives up. A write that
        # times out runs on in the background; if it commits after all, the spool's replay skips it.
        done, _ = await asyncio.wait({task}, timeout=self.config.write_timeout_s)
        error: BaseException | None = TimeoutError("the write timed out") if not done else None
        if done and not task.cancelled():
            error = task.exception()
        if error is None:
            return True
        self._healthy = False
        self._retry_at = time.monotonic() + self.config.retry_interval_s
        log.warning("ledger: the store did not take a batch (%s); spooling", _reason(error))
        return False

    async def _spool_batch(self, rows: list[Row]) -> None:
        if not rows:
            return
        await self.spool.drain()  # rows handed over earlier go first
        try:
            await self.spool.append(rows)
        except OSError as exc:
            log.error("ledger: cannot write %d rows to the spool: %s", len(rows), exc)

    async def _recover(self) -> None:
        """Open the store if needed, then replay every ready spool segment; healthy when all went in."""
        self._retry_at = time.monotonic() + self.config.retry_interval_s
        self._scan_at = time.monotonic() + _SCAN_INTERVAL_S
        if self.repository is None and not await self._open_store():
            return
        await self.spool.drain()
        for segment in await self.spool.ready_segments():
            rows = [complete_row(row) for row in await self.spool.read(segment)]
            if rows and not await self._write(rows):
                return
            await self.spool.remove(segment)
            if rows:
                log.info("ledger: replayed %d spooled rows from %s", len(rows), segment.name)
        if not self._healthy:
            log.info("ledger: the store takes writes")
        self._healthy = True

    async def _open_store(self) -> bool:
        try:
            store = await asyncio.wait_for(open_store(self.store_url), self.config.write_timeout_s * 5)
            await migrate(store)
        except Exception as exc:
            log.warning("ledger: the store is still unavailable (%s)", _reason(exc))
            return False
        self._own_store = store
        self.repository = LedgerRepository(store)
        return True


def _retrieve(task: asyncio.Task[None]) -> None:
    # A write that outlived its timeout reports nothing more: its rows are already in the spool.
    if not task.cancelled():
        task.exception()


def _reason(exc: BaseException) -> str:
    # Store errors never carry credentials (store/postgres.py names only the kind and reason).
    return f"{type(exc).__name__}: {str(exc)[:200]}" if str(exc) else type(exc).__name__
