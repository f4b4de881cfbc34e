"""W3C trace context as gatecore reads and writes it: `traceparent` and `tracestate` checked as the
specification asks, and the trace-id-ratio sampler's bound."""

from __future__ import annotations

import pytest

from gatecore.telemetry.trace_context import (
    LOW_64,
    parse_traceparent,
    parse_tracestate,
    ratio_bound,
    traceparent_line,
)

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_valid_traceparent_gives_its_ids_and_flags() -> None:
    assert parse_traceparent(VALID) == (0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, 1)
    assert parse_traceparent(f" {VALID}\t") is not None  # optional whitespace around the value
    # A later version may carry more fields after a dash; the four known ones are read.
    assert parse_traceparent("cc" + VALID[2:] + "-what-the-future-adds") == (
        0x4BF92F3577B34DA6A3CE929D0E0E4736,
        0x00F067AA0BA902B7,
        1,
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "00-zz-1",
        VALID[:-1],
        VALID + "-extra",  # version 00 has exactly four fields
        "ff" + VALID[2:],  # version ff is invalid
        VALID.upper(),  # lower-case hex only
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero parent id
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        "cc" + VALID[2:] + "x",  # a later version: more only after a dash
    ],
)
def test_an_invalid_traceparent_is_ignored(value: str) -> None:
    assert parse_traceparent(value) is None


def test_tracestate_is_kept_when_valid_and_dropped_whole_when_not() -> None:
    assert parse_tracestate("vendor=abc,other=x1") == "vendor=abc,other=x1"
    assert (
        parse_tracestate(" congo=t61rcWkgMzE , ,rojo=00f067aa0ba902b7")
        == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    )
    assert parse_tracestate("tenant@system=v") == "tenant@system=v"
    assert parse_tracestate(None) == ""
    for bad in (
        "novalue",
        "Upper=1",
        "k=v,k=w",  # a key twice
        "k=has,comma=x=y",
        "k=a\tb",  # a tab inside a value
        "@system=v",
        "k=" + "v" * 257,
        ",".join(f"k{i}=v" for i in range(33)),  # more than 32 members
        "k=\u00e9",
    ):
        assert parse_tracestate(bad) == "", bad


def test_the_header_lines_written_upstream() -> None:
    trace_id, span_id, _ = parse_traceparent(VALID) or (0, 0, 0)
    assert traceparent_line(trace_id, span_id, 0x03, "") == (
        b"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03\r\n"
    )
    assert traceparent_line(1, 2, 0x100, "a=b") == (
        b"traceparent: 00-00000000000000000000000000000001-0000000000000002-00\r\ntracestate: a=b\r\n"
    )


def test_the_ratio_bound_samples_that_share_of_the_low_64_bits() -> None:
    assert ratio_bound(0.0) == 0
    assert ratio_bound(1.0) == LOW_64 + 1  # every id is below it
    assert ratio_bound(0.25) == 2**62
