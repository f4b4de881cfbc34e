"""The `process_*` series every Prometheus client library exports (CPU, memory, descriptors, start
time), for each worker of the server.

A scrape reaches one worker, so each worker puts its own figures in its snapshot (worker_files.py)
and the scrape renders every live worker's, labelled by `pid` (telemetry/exposition.py): a server
with four workers shows four series per figure, and a worker that leaks memory stands out. Figures
are read from /proc (Linux); elsewhere only the CPU time (`os.times`) and the descriptor limit are
known. Reading them costs ~9 µs, once per snapshot (at most every `metrics_flush_s`).
"""

from __future__ import annotations

import os
import resource

# name → (type, help), in the order they are rendered.
FAMILIES: dict[str, tuple[str, str]] = {
    "process_cpu_seconds_total": ("counter", "Total user and system CPU time spent in seconds."),
    "process_resident_memory_bytes": ("gauge", "Resident memory size in bytes."),
    "process_virtual_memory_bytes": ("gauge", "Virtual memory size in bytes."),
    "process_open_fds": ("gauge", "Number of open file descriptors."),
    "process_max_fds": ("gauge", "Maximum number of open file descriptors."),
    "process_start_time_seconds": ("gauge", "Start time of the process since unix epoch in seconds."),
}
BUILD_INFO = "gatecore_build_info"
# Each family's figure in a snapshot's `process`.
SNAPSHOT_KEYS = {
    "process_cpu_seconds_total": "cpu_s",
    "process_resident_memory_bytes": "rss",
    "process_virtual_memory_bytes": "vsize",
    "process_open_fds": "fds",
    "process_max_fds": "max_fds",
    "process_start_time_seconds": "start",
}


def _start_time() -> float | None:
    """When this process started (epoch seconds): /proc/self/stat's start, in clock ticks after boot."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            # Fields after the command name (which may hold spaces), from the 3rd: start time is the 22nd.
            fields = stat.read().rpartition(b")")[2].split()
        with open("/proc/stat", "rb") as system:
            boot = next(int(line.split()[1]) for line in system if line.startswith(b"btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


class ProcessStats:
    """This worker's figures, read when its snapshot is taken."""

    __slots__ = ("_page", "pid", "start")

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.start = _start_time()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def snapshot(self) -> dict[str, float | int]:
        """Plain data for the worker's snapshot; figures this platform does not give are left out."""
        times = os.times()
        figures: dict[str, float | int] = {"pid": self.pid, "cpu_s": times.user + times.system}
        if self.start is not None:
            figures["start"] = self.start
        try:
            with open("/proc/self/statm", "rb") as statm:
                size, resident = statm.read().split()[:2]
            figures["vsize"] = int(size) * self._page
            figures["rss"] = int(resident) * self._page
            figures["fds"] = len(os.listdir("/proc/self/fd"))
        except (OSError, ValueError):
            pass
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY:
            figures["max_fds"] = soft
        return figures
