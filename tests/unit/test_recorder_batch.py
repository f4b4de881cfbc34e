"""Finished requests reach the recorders in batches (`Recording.finished`, the chain's last step): on the loop's next turn,
each recorder over the whole batch in the configured order, a failing recorder logged without costing
the others their records, and what is still waiting recorded at shutdown."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from gatecore.pipeline.recording import Recording
from gatecore.request import CHAT, RequestContext


class ListRecorder:
    def __init__(self, name: str, calls: list[tuple[str, str]], fail_on: str | None = None) -> None:
        self.name, self.calls, self.fail_on = name, calls, fail_on

    def record(self, ctx: RequestContext, finished_ns: int) -> None:
        assert finished_ns >= ctx.started
        self.calls.append((self.name, ctx.request_id))
        if ctx.request_id == self.fail_on:
            raise RuntimeError("recorder bug")

    async def aclose(self) -> None:
        self.calls.append((self.name, "closed"))


def gateway_with(*recorders: ListRecorder) -> Recording:
    return Recording(recorders)


def finished(gateway: Recording, request_id: str) -> None:
    gateway.finished(RequestContext(CHAT, request_id, b"", time.perf_counter_ns()), time.perf_counter_ns())


@pytest.mark.asyncio
async def test_a_turns_requests_are_recorded_next_turn_recorder_by_recorder() -> None:
    calls: list[tuple[str, str]] = []
    gateway = gateway_with(ListRecorder("ledger", calls), ListRecorder("log", calls))
    finished(gateway, "r1")
    finished(gateway, "r2")
    assert calls == []  # not on the request's own path
    await asyncio.sleep(0)
    assert calls == [("ledger", "r1"), ("ledger", "r2"), ("log", "r1"), ("log", "r2")]
    finished(gateway, "r3")
    await asyncio.sleep(0)
    assert calls[4:] == [("ledger", "r3"), ("log", "r3")]


@pytest.mark.asyncio
async def test_a_failing_recorder_costs_no_other_record(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[str, str]] = []
    gateway = gateway_with(ListRecorder("ledger", calls, fail_on="r1"), ListRecorder("log", calls))
    with caplog.at_level(logging.ERROR, logger="gatecore"):
        finished(gateway, "r1")
        finished(gateway, "r2")
        await asyncio.sleep(0)
    assert calls == [("ledger", "r1"), ("ledger", "r2"), ("log", "r1"), ("log", "r2")]
    assert "ListRecorder failed for request r1" in caplog.text


@pytest.mark.asyncio
async def test_shutdown_records_what_is_still_waiting() -> None:
    calls: list[tuple[str, str]] = []
    gateway = gateway_with(ListRecorder("ledger", calls))
    finished(gateway, "last")
    await gateway.aclose()  # no turn of the loop in between
    assert calls == [("ledger", "last"), ("ledger", "closed")]
