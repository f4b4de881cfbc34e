"""tracemalloc inside every gatecore worker of a soak run (benches/soak.py --tracemalloc DIR).

Python imports this module at start-up when its folder is on PYTHONPATH. With
GATECORE_SOAK_TRACEMALLOC=DIR:WARMUP:DURATION set, a process that serves (a granian worker, forked or
spawned) starts tracemalloc, snapshots the heap at WARMUP and again near DURATION, and writes the top
allocation differences (by line and by traceback) to DIR/tracemalloc-PID.txt. Bench-only: nothing in
gatecore imports it.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc

_SPEC = os.environ.get("GATECORE_SOAK_TRACEMALLOC")


def _watch() -> None:
    assert _SPEC is not None
    out, warmup, duration = _SPEC.rsplit(":", 2)
    tracemalloc.start(12)
    # The second snapshot is taken well before the load ends: snapshots of a large heap take seconds,
    # and the worker is stopped right after.
    time.sleep(float(warmup))
    first = tracemalloc.take_snapshot()
    time.sleep(max(1.0, float(duration) - float(warmup) - 10.0))
    second = tracemalloc.take_snapshot()
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    first, second = first.filter_traces(filters), second.filter_traces(filters)
    lines = [f"pid {os.getpid()} traced now {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB"]
    lines.append("== by line ==")
    lines += [str(s) for s in second.compare_to(first, "lineno")[:40]]
    lines.append("== by traceback ==")
    for stat in second.compare_to(first, "traceback")[:12]:
        lines.append(f"{stat.size_diff / 1024:.1f} KiB in {stat.count_diff} blocks")
        lines += ["    " + ln for ln in stat.traceback.format()]
    with open(os.path.join(out, f"tracemalloc-{os.getpid()}.txt"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def _begin() -> None:
    threading.Thread(target=_watch, name="soak-tracemalloc", daemon=True).start()


if _SPEC:
    # A forked worker does not inherit the parent's thread: start one in each child, and in this
    # process only when it is not the master (granian's master imports gatecore.cli, its workers are
    # forked or spawned; a spawned one runs this module afresh).
    os.register_at_fork(after_in_child=_begin)
    if os.environ.get("GATECORE_SOAK_TRACEMALLOC_ALL"):
        _begin()


_TRIM = os.environ.get("GATECORE_SOAK_TRIM")


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _trim() -> None:
    """At T seconds, RSS before and after glibc's malloc_trim(0): memory freed but kept by the
    allocator comes back, memory still referenced does not."""
    import ctypes

    assert _TRIM is not None
    out, at = _TRIM.rsplit(":", 1)
    time.sleep(float(at))
    before = _rss_mb()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    after = _rss_mb()
    with open(os.path.join(out, f"trim-{os.getpid()}.txt"), "w") as fh:
        fh.write(f"rss before malloc_trim {before:.1f} MiB, after {after:.1f} MiB\n")


if _TRIM:
    os.register_at_fork(after_in_child=lambda: threading.Thread(target=_trim, daemon=True).start())
