"""One ledger row per finished inference request: the columns and how a context becomes a row.

A row is a plain tuple in `COLUMNS` order: cheap to build on the request path, to batch into one
INSERT, and to spool as a JSON array.
"""

from __future__ import annotations

import time
from itertools import count
from typing import Any

from gatecore.durations import ms
from gatecore.request import RequestContext
from gatecore.telemetry.access_log import guardrail_summary

COLUMNS = (
    "id",
    "request_id",
    "at",
    "day",
    "endpoint",
    "key_id",
    "key_name",
    "user_id",
    "user_name",
    "team_id",
    "team_name",
    "org_id",
    "org_name",
    "model",
    "deployment",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "usage_source",
    "cost_usd",
    "gpu_seconds",
    "status",
    "error_type",
    "latency_ms",
    "ttft_ms",
    "streamed",
    "cache_hit",
    "client_gone",
    "run_id",
    # Migration 3: the timings of a benchmark run's export (admin/runs_api.py).
    "overhead_ms",  # as in x-gatecore-overhead-ms; null when no answer head carried it
    "chunk_gaps",  # a stream's writes after the first (null: not streamed, or all events in one write)
    "gap_mean_ms",
    "gap_p50_ms",
    "gap_p99_ms",
    "gap_max_ms",
    # Migration 5: what a response-cache hit saved (cache_hit rows; their cost_usd is 0).
    "saved_usd",
    # Migration 6: the published prompt and version a request ran; a chain step's pipeline request.
    "prompt_name",
    "prompt_version",
    "parent_request_id",
    # Migration 8: what the guardrails did (`guard:type:action=count,...`; never the matched text).
    "guardrails",
    # Migration 11: the engine and model revision that served it (x-gatecore-served-by).
    "served_by",
)
Row = tuple[Any, ...]
_NO_GAPS = (None, None, None, None, None)  # not streamed
_NO_PROMPT = (None, None, None)
_NEWER = len(COLUMNS) - COLUMNS.index("run_id") - 1  # columns a row spooled before migration 3 lacks


def complete_row(row: Row) -> Row:
    """A row read back from the spool, with the columns added since it was written set to null."""
    missing = len(COLUMNS) - len(row)
    return row + (None,) * missing if 0 < missing <= _NEWER else row


class RowMaker:
    """Builds rows for one worker process. Row ids are `<worker tag>:<sequence>`: unique without a
    round trip, stable through the spool (a replayed row is recognised), and independent of the
    client's `x-request-id`, which two requests may share."""

    __slots__ = ("_day", "_day_end", "_day_start", "_sequence", "tag")

    def __init__(self, tag: str):
        self.tag = tag
        self._sequence = count(1)
        self._day = ""
        self._day_start = 0.0
        self._day_end = 0.0

    def _day_of(self, at: float) -> str:
        """`YYYY-MM-DD` (UTC) of `at`; the string is reused until the day changes."""
        if not self._day_start <= at < self._day_end:
            self._day_start = at - at % 86400
            self._day_end = self._day_start + 86400
            self._day = time.strftime("%Y-%m-%d", time.gmtime(self._day_start))
        return self._day

    def row(
        self, ctx: RequestContext, finished_ns: int, cost_usd: float, saved_usd: float | None = None
    ) -> Row:
        """The ledger row of a finished request; `at` is its arrival (wall clock, epoch seconds);
        `saved_usd` what a cache hit would have cost upstream."""
        now_ns = time.perf_counter_ns()
        at = time.time() - (now_ns - ctx.started) / 1e9
        key = ctx.key
        team = user = org = None
        if key is not None:
            team, user, org = key.team, key.user, key.org
        usage = ctx.usage
        first_byte = ctx.first_byte_ns
        gaps = ctx.chunk_gaps
        overhead = ctx.overhead_ns
        return (
            f"{self.tag}:{next(self._sequence):x}",
            ctx.request_id,
            at,
            self._day_of(at),
            ctx.endpoint.name,
            key.id if key is not None else None,
            key.name if key is not None else None,
            user.id if user is not None else None,
            user.name if user is not None else None,
            team.id if team is not None else None,
            team.name if team is not None else None,
            org.id if org is not None else None,
            org.name if org is not None else None,
            ctx.client_model,
            ctx.deployment_id or None,
            usage.input_tokens if usage is not None else 0,
            usage.output_tokens if usage is not None else 0,
            usage.cached_tokens if usage is not None else 0,
            usage.reasoning_tokens if usage is not None else 0,
            usage.source if usage is not None else "none",
            cost_usd,
            ctx.gpu_seconds,
            ctx.status,
            ctx.error_code,
            ms(finished_ns - ctx.started),
            ms(first_byte - ctx.started) if first_byte else None,
            ctx.stream,
            saved_usd is not None,  # a cache hit
            ctx.client_gone,
            ctx.run_id or (key.run_id if key is not None else None),
            ms(overhead) if overhead else None,
            *(gaps.row_fields() if gaps is not None else _NO_GAPS),
            saved_usd,
            *(
                (prompt.name, prompt.version, prompt.parent)
                if (prompt := ctx.prompt) is not None
                else _NO_PROMPT
            ),
            guardrail_summary(ctx) if ctx.guard is not None else None,
            ctx.deployment.served_by if ctx.deployment is not None else None,
        )
