"""The ledger's spool: rows the store could not take, kept on local disk until it can.

Rows are appended to segment files as JSON lines (one row, a JSON array in column order, per line),
one fsync per batch, in a directory of their own. Each process writes its own segments,
`<tag>-<n>.jsonl`, where `tag` is random per process, and holds an exclusive `flock` on `<tag>.lock`
for as long as it lives. Replay takes whole segments:

- its own, once sealed (a new segment is started, so appends never race the replay);
- those of a process that is gone (its lock file can be locked, or there is none): claimed by an
  atomic rename into this process's name, so when several workers start together each dead segment
  is replayed by exactly one of them.

A segment is deleted only after its rows are in the store. The store ignores rows it already has
(the row id is the primary key), so a crash between insert and delete, or a batch that timed out in
the store but was committed anyway, costs nothing but a repeat. A torn last line (a crash during a
write) is skipped.

Every file operation runs on one dedicated thread, in order, so the event loop never waits on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("gatecore.ledger")

Row = tuple[Any, ...]
_SEGMENT = re.compile(r"([0-9a-f]+)-(\d+)\.jsonl")


class Spool:
    """The spool directory as seen by one process (`tag`)."""

    def __init__(self, directory: Path, tag: str):
        self.directory = directory
        self.tag = tag
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gatecore-spool")
        self._lock_fd: int | None = None
        self._current: Path | None = None  # the segment appends go to (None: start a new one)
        self._next = 0
        self._pending: set[asyncio.Future[None]] = set()

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        """Create the directory and take this process's lock."""
        await self._run(self._open)

    def _open(self) -> None:
        private_directory(self.directory)
        fd = os.open(self.directory / f"{self.tag}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._lock_fd = fd

    async def append(self, rows: list[Row]) -> None:
        """Append rows to this process's current segment and fsync it."""
        await self._run(self._append, rows)

    def append_soon(self, rows: list[Row]) -> None:
        """`append` without waiting (from synchronous code on the loop); `drain` waits for it."""
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._append, rows)
        self._pending.add(future)
        future.add_done_callback(self._appended)

    def _appended(self, future: asyncio.Future[None]) -> None:
        self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("cannot write the ledger spool: %s", future.exception())

    async def drain(self) -> None:
        """Wait until every `append_soon` is on disk."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def _append(self, rows: list[Row]) -> None:
        if not rows:
            return
        if self._current is None:
            self._current = self._segment_path(self._new_number())
        data = b"".join(orjson.dumps(row) + b"\n" for row in rows)
        fd = os.open(self._current, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _segment_path(self, number: int) -> Path:
        return self.directory / f"{self.tag}-{number:08d}.jsonl"

    def _new_number(self) -> int:
        self._next += 1
        return self._next

    async def ready_segments(self) -> list[Path]:
        """Seal the current segment and return every segment ready to replay: this process's own and
        those claimed from processes that are gone."""
        result: list[Path] = await self._run(self._ready_segments)
        return result

    def _ready_segments(self) -> list[Path]:
        self._current = None
        ready: list[Path] = []
        dead: dict[str, int | None] = {}
        for path in sorted(self.directory.glob("*.jsonl")):
            found = _SEGMENT.fullmatch(path.name)
            if found is None:
                continue
            owner = found.group(1)
            if owner == self.tag:
                ready.append(path)
                continue
            if owner not in dead:
                dead[owner] = self._lock_if_gone(owner)
            if dead[owner] == -1:  # alive
                continue
            claimed = self._segment_path(self._new_number())
            try:
                os.rename(path, claimed)  # atomic: another worker claiming it too gets ENOENT
            except FileNotFoundError:
                continue
            ready.append(claimed)
        for owner, fd in dead.items():
            if fd is not None and fd != -1:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.directory / f"{owner}.lock")
                os.close(fd)
        return ready

    def _lock_if_gone(self, owner: str) -> int | None:
        """The fd of `owner`'s lock, locked by us (it is gone); None if it left no lock file; -1 while
        it is alive."""
        try:
            fd = os.open(self.directory / f"{owner}.lock", os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return -1
        return fd

    async def read(self, path: Path) -> list[Row]:
        """The rows of a segment (a torn line is skipped)."""
        rows: list[Row] = await self._run(self._read, path)
        return rows

    def _read(self, path: Path) -> list[Row]:
        rows: list[Row] = []
        for line in path.read_bytes().splitlines():
            try:
                rows.append(tuple(orjson.loads(line)))
            except orjson.JSONDecodeError:
                log.warning("skipping a torn line in the ledger spool %s", path.name)
        return rows

    async def remove(self, path: Path) -> None:
        await self._run(_unlink, path)

    async def close(self) -> None:
        """Release this process's lock (its segments stay for the next start to replay)."""
        await self.drain()
        await self._run(self._close)
        self._executor.shutdown(wait=True)

    def _close(self) -> None:
        if self._lock_fd is None:
            return
        if not any(self.directory.glob(f"{self.tag}-*.jsonl")):
            _unlink(self.directory / f"{self.tag}.lock")
        os.close(self._lock_fd)
        self._lock_fd = None


class SpoolNotPrivate(PermissionError):
    """The spool directory could be written by someone else: its rows cannot be trusted."""


def private_directory(directory: Path) -> None:
    """Create `directory` 0700, or accept an existing one only if it is a real directory (not a
    link) owned by this user that no one else can write; a readable one is tightened to 0700.

    Why: rows in the spool are replayed into the ledger (spend, budgets, usage) as they are found.
    A directory another local user created first, or may write, would let them plant rows (or read
    the ones spooled)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise SpoolNotPrivate(f"the ledger spool {directory} is not a directory (a symbolic link?)")
    if info.st_uid != os.geteuid():
        raise SpoolNotPrivate(
            f"the ledger spool {directory} belongs to uid {info.st_uid}, not this process's "
            f"({os.geteuid()}): remove it or set ledger.spool_dir"
        )
    if info.st_mode & 0o022:
        raise SpoolNotPrivate(
            f"the ledger spool {directory} can be written by others (mode {stat.S_IMODE(info.st_mode):o}): "
            "check its segments, then chmod 700 it"
        )
    if info.st_mode & 0o077:
        os.chmod(directory, 0o700)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
