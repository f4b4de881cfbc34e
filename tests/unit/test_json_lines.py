"""JsonLines (the access log's formatter): nanosecond fields shown in ms and s, and lines written
straight to a file descriptor."""

from __future__ import annotations

import fcntl
import json
import os

import pytest

from gatecore._core import JsonLines


def test_nanosecond_fields_read_back_in_their_unit() -> None:
    lines = JsonLines(["ts", "latency_ms", "count", "name"], ["s", "ms", "", ""])
    lines.add((1_796_528_032_257_999_999, 1_319_500, 1_319_500, "a"))
    lines.add((5_000_000, None, -3, "b"))
    first, second = (json.loads(line) for line in lines.take().splitlines())
    assert first == {"ts": 1796528032.257, "latency_ms": 1.32, "count": 1319500, "name": "a"}
    assert second == {"ts": 0.005, "latency_ms": None, "count": -3, "name": "b"}


def test_units_must_match_the_fields() -> None:
    with pytest.raises(ValueError, match="2 units for 1 fields"):
        JsonLines(["a"], ["ms", "s"])
    with pytest.raises(ValueError, match="unknown unit"):
        JsonLines(["a"], ["us"])


def test_write_to_sends_every_line_once() -> None:
    read_end, write_end = os.pipe()
    try:
        lines = JsonLines(["n"])
        for n in range(1000):
            lines.add((n,))
        waiting = len(lines)
        assert lines.write_to(write_end) == waiting
        assert len(lines) == 0 and lines.write_to(write_end) == 0
        os.close(write_end)
        write_end = -1
        got = b""
        while chunk := os.read(read_end, 65536):
            got += chunk
        assert [json.loads(line)["n"] for line in got.splitlines()] == list(range(1000))
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def test_a_full_nonblocking_descriptor_keeps_the_rest_for_later() -> None:
    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(write_end, fcntl.F_SETFL, fcntl.fcntl(write_end, fcntl.F_GETFL) | os.O_NONBLOCK)
        lines = JsonLines(["text"])
        for _ in range(400):  # ~400 KiB: more than a pipe holds
            lines.add(("x" * 1000,))
        total = len(lines)
        sent = lines.write_to(write_end)
        assert 0 < sent < total and len(lines) == total - sent
        got = b""
        while len(got) < total:
            got += os.read(read_end, 1 << 20)
            sent += lines.write_to(write_end)
        assert sent == total and len(lines) == 0
        assert all(json.loads(line) == {"text": "x" * 1000} for line in got.splitlines())
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_closed_descriptor_drops_the_lines_and_raises() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    lines = JsonLines(["n"])
    lines.add((1,))
    with pytest.raises(OSError):
        lines.write_to(write_end)
    assert len(lines) == 0
