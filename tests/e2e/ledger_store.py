"""The store behind a ledger test: read its rows, and make it unavailable for a while.

SQLite: the test takes the database's write lock (BEGIN IMMEDIATE on its own connection), so the
gateway's inserts wait: a store that is "slow". PostgreSQL: the gateway reaches the server through a
TcpProxy that the test cuts: a store that is "down".
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

from gatecore.ledger.row import COLUMNS, Row
from gatecore.store import open_store

from ..services.postgres import PostgresServer
from ..services.tcp_proxy import TcpProxy

# A plain answered chat request's ledger row, for tests and benches that write rows straight into
# the store; `ledger_row` takes what differs.
ROW_DEFAULTS: dict[str, Any] = {
    "day": "2026-11-25",
    "endpoint": "chat",
    "input_tokens": 0,
    "output_tokens": 0,
    "cached_tokens": 0,
    "reasoning_tokens": 0,
    "usage_source": "upstream",
    "cost_usd": 0.0,
    "gpu_seconds": 0.0,
    "status": 200,
    "streamed": False,
    "cache_hit": False,
    "client_gone": False,
}


def ledger_row(**values: Any) -> Row:
    """A row in `COLUMNS` order: `values` over `ROW_DEFAULTS`, every other column null."""
    merged = {**ROW_DEFAULTS, **values}
    return tuple(merged.get(column) for column in COLUMNS)


class LedgerStore:
    """A store URL for the gateway (`gateway_url`), one for the test (`url`) and an outage switch."""

    def __init__(self, url: str, proxy: TcpProxy | None = None):
        self.url = url
        self.proxy = proxy
        self.gateway_url = url
        if proxy is not None:
            host_port = url.split("@", 1)[1].split("/", 1)[0]
            self.gateway_url = url.replace(host_port, f"127.0.0.1:{proxy.port}")
        self._lock: sqlite3.Connection | None = None

    @classmethod
    def for_test(cls, store_url: str, postgres: PostgresServer | None) -> LedgerStore:
        if store_url.startswith("sqlite"):
            return cls(store_url)
        assert postgres is not None
        return cls(store_url, TcpProxy(postgres.port))

    def take_down(self) -> None:
        if self.proxy is not None:
            self.proxy.cut()
            return
        self._lock = sqlite3.connect(self.url[len("sqlite:///") :], isolation_level=None, timeout=10)
        self._lock.execute("BEGIN IMMEDIATE")

    def bring_back(self) -> None:
        if self.proxy is not None:
            self.proxy.restore()
        elif self._lock is not None:
            self._lock.execute("COMMIT")
            self._lock.close()
            self._lock = None

    def close(self) -> None:
        self.bring_back()
        if self.proxy is not None:
            self.proxy.close()

    def rows(self) -> list[dict[str, Any]]:
        """Every ledger row (an empty list before the gateway created the table)."""

        async def fetch() -> list[dict[str, Any]]:
            store = await open_store(self.url)
            try:
                exists = await store.fetch("SELECT version FROM schema_migrations WHERE version = 2")
            except Exception:
                exists = []
            try:
                if not exists:
                    return []
                records = await store.fetch(f"SELECT {', '.join(COLUMNS)} FROM usage_ledger")
                return [dict(zip(COLUMNS, r, strict=True)) for r in records]
            finally:
                await store.close()

        return asyncio.run(fetch())

    def wait_rows(self, request_ids: set[str], timeout: float = 20.0) -> list[dict[str, Any]]:
        """The rows once every one of `request_ids` has one (then a short settle for stragglers)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows()
            missing = request_ids - {r["request_id"] for r in rows}
            if not missing:
                time.sleep(0.3)  # any duplicate would land now
                return self.rows()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(missing)} requests have no ledger row, e.g. {sorted(missing)[:3]}"
                )
            time.sleep(0.1)


def spool_files(spool_dir: Path) -> list[Path]:
    return sorted(spool_dir.glob("*.jsonl")) if spool_dir.exists() else []
