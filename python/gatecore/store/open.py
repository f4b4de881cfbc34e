"""Choosing the backend from `store.url`."""

from __future__ import annotations

import os
from pathlib import Path

from gatecore.store.base import Store

STORE_URL_ENV = "GATECORE_STORE_URL"


def default_store_url(config_dir: Path | None) -> str:
    """`$GATECORE_STORE_URL`, else a `gatecore.db` SQLite file beside the config file (or in the cwd)."""
    from_env = os.environ.get(STORE_URL_ENV)
    if from_env:
        return from_env
    return f"sqlite:///{(config_dir or Path.cwd()) / 'gatecore.db'}"


def sqlite_path(url: str) -> str:
    """The file of a SQLite URL: `sqlite:///relative.db`, `sqlite:////absolute.db` (SQLAlchemy's form)."""
    return url[len("sqlite:///") :]


async def open_store(url: str, pool_size: int = 4, statement_timeout_s: float = 0.0) -> Store:
    """Connect to the store at `url` (`sqlite:///file.db` or `postgresql://user@host:port/db`);
    PostgreSQL with at most `pool_size` connections, each with that `statement_timeout` (0: none)."""
    if url.startswith("sqlite:///"):
        from gatecore.store.sqlite import SqliteStore

        return await SqliteStore.open(sqlite_path(url))
    if url.startswith(("postgresql://", "postgres://")):
        from gatecore.store.postgres import PostgresStore

        return await PostgresStore.open(url, pool_size, statement_timeout_s)
    raise ValueError(f"unsupported store URL scheme in {url.split(':', 1)[0]!r}")
