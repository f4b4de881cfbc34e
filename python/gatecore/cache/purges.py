"""Purges that reach every worker of a server: the in-process backend is one per worker, and an admin
call reaches one of them.

The worker that takes `POST /admin/v1/cache/purge` purges its own entries and appends the purge's rule
(namespace, model, cutoff) as one line to `cache-purges.jsonl` in the server's shared directory
(the one `gatecore serve` makes for its workers: telemetry/worker_files.py). Every worker checks the
file's size before each lookup (one `fstat`) and, when it grew, applies the new rules to its own
entries first: once the purge's answer is sent, no worker serves a purged entry. Appends are single
`O_APPEND` writes of one short line, so workers never interleave them; a reader takes whole lines
only. The Redis backend needs none of this: its entries are shared already.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable

import msgspec

from gatecore.cache.entry import CachedAnswer
from gatecore.telemetry.worker_files import METRICS_DIR_ENV

log = logging.getLogger("gatecore.cache")
FILE = "cache-purges.jsonl"


class PurgeRule(msgspec.Struct, frozen=True):
    """One purge: entries of `namespace` (None: any) and `model` (None: any) stored at or before `cutoff`."""

    namespace: str | None
    model: str | None
    cutoff: float  # epoch seconds: the purge's time, less `older_than_s`

    def matches(self, entry: CachedAnswer) -> bool:
        return (self.model is None or entry.model == self.model) and entry.stored_at <= self.cutoff


_DECODER = msgspec.json.Decoder(PurgeRule)
Purge = Callable[[Callable[[CachedAnswer], bool], str | None], object]


class SharedPurges:
    """This worker's view of the server's purge log."""

    __slots__ = ("_fd", "_offset", "path")

    def __init__(self, directory: str):
        self.path = os.path.join(directory, FILE)
        # Opened for appending and reading; created by whichever worker comes first.
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        # Rules written before this worker started concern entries it does not have.
        self._offset = os.fstat(self._fd).st_size

    def publish(self, rule: PurgeRule) -> None:
        """Tell the other workers (this one already purged); never raises."""
        line = msgspec.json.encode(rule) + b"\n"
        try:
            os.write(self._fd, line)
        except OSError as exc:  # the directory is gone (the server is stopping)
            log.warning("cannot share a cache purge with the other workers: %s", exc)

    def pending(self) -> list[PurgeRule]:
        """The rules appended since the last call (this worker's own included: applying one twice
        drops nothing more)."""
        try:
            size = os.fstat(self._fd).st_size
        except OSError:
            return []
        if size <= self._offset:
            return []
        try:
            data = os.pread(self._fd, size - self._offset, self._offset)
        except OSError:
            return []
        end = data.rfind(b"\n") + 1  # whole lines only: a line being written is read next time
        self._offset += end
        rules = []
        for line in data[:end].splitlines():
            try:
                rules.append(_DECODER.decode(line))
            except msgspec.DecodeError:
                continue
        return rules

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def shared_purges() -> SharedPurges | None:
    """The server's purge log, or None for a process not started by `gatecore serve`."""
    directory = os.environ.get(METRICS_DIR_ENV)
    if not directory or not os.path.isdir(directory):
        return None
    try:
        return SharedPurges(directory)
    except OSError as exc:
        log.warning("cache purges will reach only the worker that takes them: %s", exc)
        return None
