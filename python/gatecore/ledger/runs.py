"""Benchmark runs in the usage ledger: the rows tagged with one `run_id`, listed, summarised and exported.

Everything is computed in SQL that SQLite (3.25+, window functions) and PostgreSQL both run, so a
100k-request run never sits in the worker's memory:

- totals and means are one aggregate over the run's rows (the partial index `usage_ledger_run_at`);
- percentiles are numpy's default ("linear"): the values at ranks ⌊(n-1)p⌋ and the one after, picked
  by `ROW_NUMBER() OVER (ORDER BY value)` (one sort per figure, only the wanted ranks come back),
  and interpolated here;
- the per-request export pages through the rows in arrival order with a keyset (`at`, `id`), a
  thousand rows per query.

Latency, TTFT and inter-token latency are over the run's successful requests (an error's timings say
nothing about the model's speed; errors are counted apart). Inter-token latency per request is
aiperf's definition, `(latency - TTFT) / (output tokens - 1)`, for streams of two tokens or more.
gatecore's overhead is over every request whose answer carried `x-gatecore-overhead-ms`.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from gatecore.store import Store

PAGE_ROWS = 1000
_OK = "status < 400 AND error_type IS NULL"
# value expression, the rows it is taken over
FIGURES: dict[str, tuple[str, str]] = {
    "ttft_ms": ("ttft_ms", f"{_OK} AND streamed"),
    "latency_ms": ("latency_ms", _OK),
    "itl_ms": (
        "(latency_ms - ttft_ms) / (output_tokens - 1)",
        f"{_OK} AND streamed AND output_tokens > 1 AND ttft_ms IS NOT NULL",
    ),
    "overhead_ms": ("overhead_ms", "overhead_ms IS NOT NULL"),
}
PERCENTILES = (0.5, 0.9, 0.99)
# The per-request export: (column, SQL expression).
EXPORT: tuple[tuple[str, str], ...] = (
    ("request_id", "request_id"),
    ("at", "at"),
    ("model", "model"),
    ("deployment", "deployment"),
    ("key_name", "key_name"),
    ("team_name", "team_name"),
    ("status", "status"),
    ("error_type", "error_type"),
    ("streamed", "streamed"),
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("ttft_ms", "ttft_ms"),
    ("latency_ms", "latency_ms"),
    ("itl_ms", f"CASE WHEN streamed AND output_tokens > 1 THEN {FIGURES['itl_ms'][0]} END"),
    ("overhead_ms", "overhead_ms"),
    ("chunk_gaps", "chunk_gaps"),
    ("gap_mean_ms", "gap_mean_ms"),
    ("gap_p50_ms", "gap_p50_ms"),
    ("gap_p99_ms", "gap_p99_ms"),
    ("gap_max_ms", "gap_max_ms"),
)
EXPORT_COLUMNS = tuple(name for name, _ in EXPORT)


class RunListed(msgspec.Struct, frozen=True):
    """One run in the list: its id, first and last arrival (epoch seconds) and request count."""

    run_id: str
    first_at: float
    last_at: float
    requests: int


class Distribution(msgspec.Struct, frozen=True):
    """A figure over a run's requests (ms): how many had it, mean, extremes and percentiles."""

    count: int
    mean: float | None = None
    min: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None


class RunSummary(msgspec.Struct, frozen=True):
    """`GET /admin/v1/runs/{id}`: totals, rates and timing distributions of one run."""

    run_id: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    first_at: float  # epoch seconds: the first request's arrival
    last_at: float  # the last request's end
    duration_s: float
    requests_per_s: float
    output_tokens_per_s: float
    ttft_ms: Distribution
    latency_ms: Distribution
    itl_ms: Distribution
    overhead_ms: Distribution


class RunRequest(msgspec.Struct, frozen=True):
    """One request of a run in the export (the fields of `EXPORT`)."""

    request_id: str
    at: float
    model: str
    deployment: str | None
    key_name: str | None
    team_name: str | None
    status: int
    error_type: str | None
    streamed: bool
    input_tokens: int
    output_tokens: int
    ttft_ms: float | None
    latency_ms: float
    itl_ms: float | None
    overhead_ms: float | None
    chunk_gaps: int | None
    gap_mean_ms: float | None
    gap_p50_ms: float | None
    gap_p99_ms: float | None
    gap_max_ms: float | None


class RunsRepository:
    """Reads of benchmark runs from `usage_ledger`; `team_id` restricts every read to one team's rows."""

    def __init__(self, store: Store):
        self.store = store

    def _where(self, run_id: str, team_id: str | None) -> tuple[str, list[Any]]:
        if team_id is None:
            return "run_id = $1", [run_id]
        return "run_id = $1 AND team_id = $2", [run_id, team_id]

    async def latest(self, limit: int, team_id: str | None = None) -> list[RunListed]:
        """The most recently started runs first."""
        team = "" if team_id is None else " AND team_id = $2"
        rows = await self.store.fetch(
            "SELECT run_id, MIN(at), MAX(at), COUNT(*) FROM usage_ledger "
            f"WHERE run_id IS NOT NULL{team} GROUP BY run_id ORDER BY 2 DESC, 1 LIMIT $1",
            limit,
            *(() if team_id is None else (team_id,)),
        )
        return [RunListed(r[0], float(r[1]), float(r[2]), int(r[3])) for r in rows]

    async def summary(self, run_id: str, team_id: str | None = None) -> RunSummary | None:
        """The run's summary; None when it has no rows (that the team may see)."""
        where, args = self._where(run_id, team_id)
        means = ", ".join(
            f"COUNT(CASE WHEN {rows} THEN {value} END), AVG(CASE WHEN {rows} THEN {value} END), "
            f"MIN(CASE WHEN {rows} THEN {value} END), MAX(CASE WHEN {rows} THEN {value} END)"
            for value, rows in FIGURES.values()
        )
        row = await self.store.fetchone(
            f"SELECT COUNT(*), SUM(CASE WHEN {_OK} THEN 0 ELSE 1 END), SUM(input_tokens), "
            f"SUM(output_tokens), MIN(at), MAX(at + latency_ms / 1000.0), {means} "
            f"FROM usage_ledger WHERE {where}",
            *args,
        )
        if row is None or not row[0]:
            return None
        requests, errors, tokens_in, tokens_out, first_at, last_at = row[:6]
        duration = max(float(last_at) - float(first_at), 1e-9)
        figures: dict[str, Distribution] = {}
        for i, (name, (value, rows)) in enumerate(FIGURES.items()):
            count, mean, low, high = row[6 + 4 * i : 10 + 4 * i]
            points = await self._percentiles(value, f"{where} AND {rows}", args, int(count))
            p50, p90, p99 = (_ms(points.get(p)) for p in PERCENTILES)
            figures[name] = Distribution(
                count=int(count), mean=_ms(mean), min=_ms(low), p50=p50, p90=p90, p99=p99, max=_ms(high)
            )
        return RunSummary(
            run_id=run_id,
            requests=int(requests),
            errors=int(errors or 0),
            input_tokens=int(tokens_in or 0),
            output_tokens=int(tokens_out or 0),
            first_at=float(first_at),
            last_at=float(last_at),
            duration_s=round(duration, 6),
            requests_per_s=round(int(requests) / duration, 3),
            output_tokens_per_s=round(int(tokens_out or 0) / duration, 3),
            **figures,
        )

    async def _percentiles(self, value: str, where: str, args: list[Any], count: int) -> dict[float, float]:
        """numpy-style linear percentiles of `value` over `count` rows, by one windowed query."""
        if not count:
            return {}
        ranks: dict[float, tuple[int, int, float]] = {}
        for p in PERCENTILES:
            position = (count - 1) * p
            low = math.floor(position)
            ranks[p] = (low + 1, min(low + 2, count), position - low)  # 1-based ranks
        wanted = sorted({r for low, high, _ in ranks.values() for r in (low, high)})
        marks = ", ".join(f"${len(args) + i + 1}" for i in range(len(wanted)))
        rows = await self.store.fetch(
            f"SELECT n, v FROM (SELECT {value} AS v, ROW_NUMBER() OVER (ORDER BY {value}) AS n "
            f"FROM usage_ledger WHERE {where} AND {value} IS NOT NULL) ranked WHERE n IN ({marks})",
            *args,
            *wanted,
        )
        at = {int(r[0]): float(r[1]) for r in rows}
        return {
            p: at[low] + fraction * (at[high] - at[low])
            for p, (low, high, fraction) in ranks.items()
            if low in at and high in at
        }

    async def requests(self, run_id: str, team_id: str | None = None) -> AsyncIterator[list[RunRequest]]:
        """The run's requests in arrival order, a page at a time (keyset on `at`, `id`)."""
        where, args = self._where(run_id, team_id)
        columns = ", ".join(expression for _, expression in EXPORT)
        n = len(args)
        after: tuple[float, str] | None = None
        while True:
            # A row-value comparison (SQLite 3.15+, PostgreSQL): the index seeks to it; the same test
            # spelled with OR made SQLite scan the run from its start for every page.
            keyset = "" if after is None else f" AND (at, id) > (${n + 1}, ${n + 2})"
            rows = await self.store.fetch(
                f"SELECT {columns}, id FROM usage_ledger WHERE {where}{keyset} "
                f"ORDER BY at, id LIMIT {PAGE_ROWS}",
                *args,
                *(() if after is None else after),
            )
            if not rows:
                return
            yield [_request(row) for row in rows]
            if len(rows) < PAGE_ROWS:
                return
            after = (rows[-1][1], rows[-1][-1])


# `_request` builds RunRequests positionally from rows in EXPORT's order.
assert RunRequest.__struct_fields__ == EXPORT_COLUMNS
_STREAMED = EXPORT_COLUMNS.index("streamed")
_ITL = EXPORT_COLUMNS.index("itl_ms")


def _request(row: tuple[Any, ...]) -> RunRequest:
    """A row of the export query (the `EXPORT` columns, then `id`) as a RunRequest: `streamed` a
    boolean in both stores, ITL rounded like the stored figures (PostgreSQL has no round(float, n))."""
    itl = row[_ITL]
    values = (
        *row[:_STREAMED],
        bool(row[_STREAMED]),
        *row[_STREAMED + 1 : _ITL],
        None if itl is None else round(float(itl), 3),
        *row[_ITL + 1 : len(EXPORT)],
    )
    return RunRequest(*values)  # positional: a third of the time of keywords over 100k rows


def _ms(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)
