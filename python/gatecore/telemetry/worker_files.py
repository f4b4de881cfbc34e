"""Sharing metrics between the workers of one server: a scrape reaches one worker, so each worker
writes its snapshot to `<pid>.json` in a directory every worker knows (set by `gatecore serve` in the
environment before the workers start), and the scraped worker adds up every file and its own figures.

A worker writes at most once per `flush_s` after a change, and every `REFRESH_S` without one (its
process figures: memory, CPU, descriptors), and once more at shutdown, so a scrape sees the other
workers' request figures at most `flush_s` old. Files of workers that have exited are still counted,
so the server's counters never go backwards when a worker is replaced, but their in-flight gauge,
breaker states and process figures are not. A config reload gives the worker a new recorder that
writes `<pid>-<generation>.json`; the files of its earlier generations count like an exited worker's.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Protocol

import orjson

METRICS_DIR_ENV = "GATECORE_METRICS_DIR"
# An idle worker's snapshot is rewritten this often, so its process figures stay current.
REFRESH_S = 10.0
log = logging.getLogger("gatecore.telemetry")


class Snapshotting(Protocol):
    """What a worker's snapshot file is written from (telemetry/metrics.py `MetricsRecorder`)."""

    def snapshot(self) -> dict[str, Any]:
        """This worker's figures as plain data."""
        ...


class WorkerFiles:
    """This worker's snapshot file in the shared directory, and reading the others'."""

    __slots__ = ("_closed", "_handle", "_name", "_path", "_refresh", "directory", "flush_s", "pid")

    def __init__(self, directory: str, flush_s: float, generation: int = 0):
        self.directory = directory
        self.flush_s = flush_s
        self.pid = os.getpid()
        self._name = f"{self.pid}-{generation}.json" if generation else f"{self.pid}.json"
        self._path = os.path.join(directory, self._name)
        self._handle: asyncio.TimerHandle | None = None
        self._refresh: asyncio.TimerHandle | None = None
        self._closed = False

    def changed(self, recorder: Snapshotting) -> None:
        """Schedule a write unless one is pending (called after every recorded request)."""
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self.flush_s, self.write, recorder)

    def write(self, recorder: Snapshotting) -> None:
        """Write the snapshot now: a temporary file renamed over the old one (readers never see half).
        Called on the worker's loop; the next write comes within REFRESH_S whatever happens."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._refresh is not None:
            self._refresh.cancel()
        if not self._closed:
            self._refresh = asyncio.get_running_loop().call_later(REFRESH_S, self.write, recorder)
        tmp = f"{self._path}.tmp"
        try:
            with open(tmp, "wb") as out:
                out.write(orjson.dumps(recorder.snapshot()))
            os.replace(tmp, self._path)
        except OSError as exc:  # the directory is gone (server stopping): metrics are best effort
            log.debug("cannot write the metrics snapshot: %s", exc)

    def close(self, recorder: Snapshotting) -> None:
        """The worker stops: write its last snapshot, and no more."""
        self._closed = True
        self.write(recorder)

    def others(self) -> list[dict[str, Any]]:
        """The other workers' last snapshots; the in-flight gauge of exited workers is zeroed."""
        snapshots: list[dict[str, Any]] = []
        try:
            names = os.listdir(self.directory)
        except OSError:
            return snapshots
        for name in names:
            stem, _, suffix = name.partition(".")
            pid_text = stem.partition("-")[0]
            if suffix != "json" or not pid_text.isdigit() or name == self._name:
                continue
            try:
                with open(os.path.join(self.directory, name), "rb") as src:
                    snapshot = orjson.loads(src.read())
            except (OSError, orjson.JSONDecodeError):
                continue
            if not isinstance(snapshot, dict):
                continue
            pid = int(pid_text)
            if pid == self.pid or not _alive(pid):  # an earlier generation of this worker, or exited
                # Its counters keep counting; what it was doing and its breakers' view are gone.
                snapshot["in_flight"] = 0
                snapshot["deployments"] = []
                snapshot.pop("process", None)
            snapshots.append(snapshot)
        return snapshots


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_files(flush_s: float, generation: int = 0) -> WorkerFiles | None:
    """The shared directory of this server's workers, or None when not started by `gatecore serve`."""
    directory = os.environ.get(METRICS_DIR_ENV)
    if not directory or not os.path.isdir(directory):
        return None
    return WorkerFiles(directory, flush_s, generation)
