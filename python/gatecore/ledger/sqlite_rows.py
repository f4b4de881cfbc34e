"""The ledger's SQLite inserts through `SqliteRowWriter` (rust/src/sqlite_rows.rs): the rows of a batch
are copied out of Python and inserted with the GIL released, through the SQLite library that Python's
sqlite3 module loaded (never a second copy: two copies in one process do not see each other's locks).

Where that library is not a shared object of its own (a Python with SQLite linked in statically),
`open_row_writer` gives None and the repository inserts through sqlite3.
"""

from __future__ import annotations

import logging
import sqlite3

from gatecore._core import SqliteRowWriter
from gatecore.store.sqlite import sqlite_sql

log = logging.getLogger("gatecore.ledger")


def loaded_sqlite_library(maps: str = "/proc/self/maps") -> str | None:
    """The path of the `libsqlite3` shared object mapped into this process (sqlite3 is imported, so
    its library is loaded if it is a shared one), or None."""
    assert sqlite3.sqlite_version  # the module, and through it the library, is loaded
    try:
        with open(maps) as lines:
            for line in lines:
                path = line.rstrip("\n").split(maxsplit=5)[-1]
                if path.startswith("/") and path.rsplit("/", 1)[-1].startswith("libsqlite3.so"):
                    return path
    except OSError:
        pass
    return None


def open_row_writer(
    path: str, insert_one: str, insert_chunk: str, chunk_rows: int, width: int
) -> SqliteRowWriter | None:
    """A writer to the database at `path` for the two INSERTs (`$n` placeholders), or None when the
    loaded SQLite cannot be attached to (the caller then uses sqlite3)."""
    library = loaded_sqlite_library()
    if library is None:
        log.info("ledger: SQLite is not a shared library here; rows go in through sqlite3")
        return None
    try:
        return SqliteRowWriter(
            library, path, sqlite_sql(insert_one), sqlite_sql(insert_chunk), chunk_rows, width
        )
    except OSError as exc:
        log.warning("ledger: rows go in through sqlite3 (%s)", exc)
        return None
