"""The ledger aggregates the overview and usage pages show: bounded queries, never "every row".

Each query is over a time window on the `at` index (or the team's `(team_id, at)` index for a caller
confined to a team) and returns at most a few hundred rows: a group per model and hour, a page of 50
requests found by a cursor, a sample of the newest 10,000 latencies for the percentiles.
"""

from __future__ import annotations

import time
from typing import Any

from gatecore.errors import StoreUnavailable
from gatecore.store.base import Row, Store, StoreError

PAGE_ROWS = 50
SAMPLE_ROWS = 10_000
_ERROR = "CASE WHEN status >= 400 OR error_type IS NOT NULL THEN 1 ELSE 0 END"


class Overview:
    """The last 24 hours: totals, per model, per hour, and latency percentiles of a recent sample."""

    def __init__(self) -> None:
        self.requests = self.errors = self.input_tokens = self.output_tokens = 0
        self.cost_usd = 0.0
        self.models: dict[str, list[float]] = {}  # model → [requests, errors, tokens, cost]
        self.hours: dict[int, float] = {}  # hour (epoch / 3600) → requests
        self.latency: tuple[float | None, float | None] = (None, None)  # p50, p99
        self.ttft: tuple[float | None, float | None] = (None, None)
        self.last_hour_requests = 0
        self.last_hour_tokens = 0


def _scope(team_id: str | None, args: list[Any]) -> str:
    if team_id is None:
        return ""
    args.append(team_id)
    return f" AND team_id = ${len(args)}"


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values.sort()
    return values[min(len(values) - 1, int(q * len(values)))]


async def _fetch(store: Store, sql: str, *args: Any) -> list[Row]:
    try:
        return await store.fetch(sql, *args)
    except StoreError as error:
        raise StoreUnavailable(f"The store is unavailable: {error}") from None


async def overview(store: Store, team_id: str | None) -> Overview:
    """The overview of the last 24 h (of `team_id`'s requests only, when given)."""
    now = time.time()
    args: list[Any] = [now - 86_400]
    scope = _scope(team_id, args)
    hour = "CAST(at / 3600 AS INTEGER)" if store.dialect == "sqlite" else "FLOOR(at / 3600)::BIGINT"
    rows = await _fetch(
        store,
        f"SELECT model, {hour}, COUNT(*), SUM({_ERROR}), SUM(input_tokens), SUM(output_tokens), "
        f"SUM(cost_usd) FROM usage_ledger WHERE at >= $1{scope} GROUP BY model, {hour}",
        *args,
    )
    out = Overview()
    current_hour = int(now // 3600)
    for model, bucket, count, errors, tokens_in, tokens_out, cost in rows[:10_000]:
        count, errors = int(count), int(errors or 0)
        tokens_in, tokens_out, cost = int(tokens_in or 0), int(tokens_out or 0), float(cost or 0.0)
        out.requests += count
        out.errors += errors
        out.input_tokens += tokens_in
        out.output_tokens += tokens_out
        out.cost_usd += cost
        line = out.models.setdefault(str(model), [0, 0, 0, 0.0])
        line[0] += count
        line[1] += errors
        line[2] += tokens_in + tokens_out
        line[3] += cost
        out.hours[int(bucket)] = out.hours.get(int(bucket), 0) + count
        if int(bucket) == current_hour:
            out.last_hour_requests += count
            out.last_hour_tokens += tokens_in + tokens_out
    sample = await _fetch(
        store,
        f"SELECT latency_ms, ttft_ms FROM usage_ledger WHERE at >= $1{scope} "
        f"ORDER BY at DESC LIMIT {SAMPLE_ROWS}",
        *args,
    )
    latencies = [float(r[0]) for r in sample if r[0] is not None]
    ttfts = [float(r[1]) for r in sample if r[1] is not None]
    out.latency = (_percentile(latencies, 0.5), _percentile(latencies, 0.99))
    out.ttft = (_percentile(ttfts, 0.5), _percentile(ttfts, 0.99))
    return out


async def requests_page(
    store: Store, team_id: str | None, since: float, until: float, before: tuple[float, str] | None
) -> list[Row]:
    """One page of requests, newest first, older than the cursor `before` (at, id) when given."""
    args: list[Any] = [since, until]
    where = "at >= $1 AND at < $2"
    if before is not None:
        args += [before[0], before[1]]
        where += " AND (at < $3 OR (at = $3 AND id < $4))"
    where += _scope(team_id, args)
    return await _fetch(
        store,
        "SELECT at, id, request_id, model, key_name, team_name, status, input_tokens, output_tokens, "
        f"cost_usd, latency_ms FROM usage_ledger WHERE {where} ORDER BY at DESC, id DESC "
        f"LIMIT {PAGE_ROWS + 1}",
        *args,
    )
