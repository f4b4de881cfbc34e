"""A worker's process figures: read from /proc as the kernel keeps them, rewritten while the worker
is idle, and dropped from the scrape once the worker has exited."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from gatecore.telemetry import worker_files
from gatecore.telemetry.exposition import render
from gatecore.telemetry.metrics import MetricsRecorder
from gatecore.telemetry.process_stats import ProcessStats
from gatecore.telemetry.worker_files import WorkerFiles

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="Linux /proc")


def test_figures_are_this_processes() -> None:
    stats = ProcessStats()
    before = stats.snapshot()
    ballast = bytearray(64 * 1024 * 1024)  # touched: resident
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # 0.2 s of CPU
        pass
    after = stats.snapshot()
    assert before["pid"] == after["pid"] == os.getpid()
    assert after["rss"] - before["rss"] >= 60 * 1024 * 1024
    assert after["vsize"] >= after["rss"]
    assert after["cpu_s"] - before["cpu_s"] >= 0.19
    assert abs(after["fds"] - len(os.listdir("/proc/self/fd"))) <= 1
    del ballast


def test_start_time_is_when_the_process_started() -> None:
    probe = "import time; t = time.time(); from gatecore.telemetry.process_stats import ProcessStats; print(ProcessStats().start, t)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True
    )
    start, first_line_ran = map(float, done.stdout.split())
    # Before the child's first line ran, by no more than its interpreter's start (+ a clock tick).
    assert start - 0.011 <= first_line_ran < start + 5


def written_at(path: Path) -> float:
    at: float = orjson.loads(path.read_bytes())["at"]
    return at


@pytest.mark.asyncio
async def test_an_idle_worker_rewrites_its_figures_until_it_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_files, "REFRESH_S", 0.05)
    files = WorkerFiles(str(tmp_path), flush_s=0.5)
    recorder = MetricsRecorder(lambda: 0, files, ("auth",))
    path = tmp_path / f"{os.getpid()}.json"
    recorder.start()  # the worker's start writes its snapshot
    first = written_at(path)
    await asyncio.sleep(0.3)  # no request: rewritten every REFRESH_S anyway
    assert written_at(path) >= first + 0.1
    await recorder.aclose()
    last = written_at(path)
    await asyncio.sleep(0.2)
    assert written_at(path) == last  # stopped: no more writes
    assert orjson.loads(path.read_bytes())["process"]["pid"] == os.getpid()


def test_an_exited_workers_figures_leave_the_scrape(tmp_path: Path) -> None:
    exited = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    dead_pid = int(exited.stdout)
    live = MetricsRecorder(lambda: 0, None, ("auth",)).snapshot()
    dead = {"at": 0, "counters": [["gatecore_cost_usd_total", 'model="m"', 2.5]], "histograms": []}
    dead["process"] = {"pid": dead_pid, "rss": 1, "cpu_s": 1.0}
    (tmp_path / f"{dead_pid}.json").write_text(json.dumps(dead))
    others = WorkerFiles(str(tmp_path), flush_s=0.5).others()
    assert len(others) == 1 and "process" not in others[0]
    text = render([live, *others]).decode()
    assert f'process_resident_memory_bytes{{pid="{os.getpid()}"}}' in text
    assert f'pid="{dead_pid}"' not in text
    assert 'gatecore_cost_usd_total{model="m"} 2.5' in text  # its counters still count
