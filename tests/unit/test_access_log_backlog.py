"""AccessLog on a pipe nobody reads: the lines wait up to the backlog's size, then are dropped and
counted, and the writes never block."""

from __future__ import annotations

import asyncio
import logging
import os
import time

import pytest

from gatecore.request import CHAT, RequestContext
from gatecore.telemetry import access_log
from gatecore.telemetry.access_log import AccessLog


def finished(i: int) -> RequestContext:
    ctx = RequestContext(CHAT, f"req-{i}", b"", time.perf_counter_ns())
    ctx.status = 200
    return ctx


def test_a_stalled_pipe_keeps_a_bounded_backlog_then_drops(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(access_log, "_BACKLOG_BYTES", 256 * 1024)
    monkeypatch.setattr(access_log, "_CLOSE_WAIT_S", 0.05)
    read_end, write_end = os.pipe()
    out = os.fdopen(write_end, "wb")

    async def run() -> tuple[int, int]:
        log = AccessLog(out)
        started = time.monotonic()
        for i in range(5000):  # ~1.5 MB of lines into a 64 KiB pipe
            log.record(finished(i), time.perf_counter_ns())
        elapsed = time.monotonic() - started
        waiting = len(log._pending)
        await log.aclose()
        return waiting, int(elapsed)

    try:
        with caplog.at_level(logging.WARNING, logger="gatecore.access_log"):
            waiting, elapsed = asyncio.run(run())
        assert elapsed < 5  # never blocked on the full pipe
        assert waiting <= 256 * 1024 + 16 * 1024
        assert any("lines dropped" in r.getMessage() for r in caplog.records)
        # What the pipe took is whole lines, in order.
        os.set_blocking(read_end, False)
        data = b""
        while True:
            try:
                chunk = os.read(read_end, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        lines = data.split(b"\n")[:-1]
        assert lines and all(line.startswith(b'{"ts"') and line.endswith(b"}") for line in lines)
        ids = [int(line.split(b'"request_id":"req-')[1].split(b'"')[0]) for line in lines]
        assert ids == sorted(ids) and ids[0] == 0
    finally:
        out.close()
        os.close(read_end)
