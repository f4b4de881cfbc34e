"""The ledger aggregates the overview and usage pages show: bounded queries, never "every row".

Totals come from `usage_hourly` (store migration 16): the ledger added up per hour, team, model,
deployment and day by the store's own trigger on every insert, so a 24 h or 30 day window is a
`GROUP BY` over a few hundred rows whatever the ledger holds (1M rows a day included), exact and
current, on every worker and replica alike.

The requests table is a page of 50 found by an `(at, id)` cursor, and the latency percentiles are
over the newest 10,000 requests: both bounded whatever the ledger holds.
"""

from __future__ import annotations

from typing import Any

from gatecore.errors import StoreUnavailable
from gatecore.store.base import Row, Store, StoreError

PAGE_ROWS = 50
SAMPLE_ROWS = 10_000
# The groupings the rollup serves (few values an hour); per-key and per-user reports go to the admin
# API. (column, shown name); the rollup keeps "none" as empty text.
ROLLUP_GROUPS: dict[str, tuple[str, str]] = {
    "model": ("model", "model"),
    "team": ("team_id", "team_name"),
    "deployment": ("deployment", "deployment"),
    "day": ("day", "day"),
}

# One group of one hour: (group, name, requests, errors, input tokens, output tokens, cost)
Group = tuple[str | None, str | None, int, int, int, int, float]


async def _fetch(store: Store, sql: str, *args: Any) -> list[Row]:
    try:
        return await store.fetch(sql, *args)
    except StoreError as error:
        raise StoreUnavailable(f"The store is unavailable: {error}") from None


def _scope(team_id: str | None, args: list[Any]) -> str:
    if team_id is None:
        return ""
    args.append(team_id)
    return f" AND team_id = ${len(args)}"


class Rollup:
    """Hourly groups of the ledger, read from the store's rollup table."""

    async def hours(
        self, store: Store, scope: str | None, grouping: str, first: int, last: int
    ) -> dict[int, list[Group]]:
        """The groups of each hour (epoch hours `first`..`last`, inclusive) by `grouping`."""
        column, name = ROLLUP_GROUPS[grouping]
        args: list[Any] = [first, last]
        rows = await _fetch(
            store,
            f"SELECT hour, {column}, MAX({name}), SUM(requests), SUM(errors), SUM(input_tokens), "
            f"SUM(output_tokens), SUM(cost_usd) FROM usage_hourly WHERE hour >= $1 AND hour <= $2"
            f"{_scope(scope, args)} GROUP BY 1, 2",
            *args,
        )
        out: dict[int, list[Group]] = {}
        for h, group, shown, count, errors, tokens_in, tokens_out, cost in rows:
            out.setdefault(int(h), []).append(
                (
                    group or None,
                    shown or None,
                    int(count),
                    int(errors or 0),
                    int(tokens_in or 0),
                    int(tokens_out or 0),
                    float(cost or 0),
                )
            )
        return out


def totals(hours: dict[int, list[Group]]) -> list[Group]:
    """The groups of several hours added up, most expensive first."""
    summed: dict[str | None, list[Any]] = {}
    for groups in hours.values():
        for group, name, count, errors, tokens_in, tokens_out, cost in groups:
            line = summed.setdefault(group, [group, name, 0, 0, 0, 0, 0.0])
            line[1] = line[1] or name
            for i, value in enumerate((count, errors, tokens_in, tokens_out, cost), start=2):
                line[i] += value
    return sorted((tuple(line) for line in summed.values()), key=lambda g: -g[6])


async def latency_sample(store: Store, scope: str | None, since: float) -> list[tuple[float, float | None]]:
    """(latency, TTFT) of the newest `SAMPLE_ROWS` requests since `since`."""
    args: list[Any] = [since]
    rows = await _fetch(
        store,
        f"SELECT latency_ms, ttft_ms FROM usage_ledger WHERE at >= $1{_scope(scope, args)} "
        f"ORDER BY at DESC LIMIT {SAMPLE_ROWS}",
        *args,
    )
    return [(float(r[0]), None if r[1] is None else float(r[1])) for r in rows if r[0] is not None]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values.sort()
    return values[min(len(values) - 1, int(q * len(values)))]


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


MAX_GUARD_COMBINATIONS = 500


async def guardrail_actions(store: Store, scope: str | None, since: float) -> dict[tuple[str, str, str], int]:
    """What the guardrails did since `since`: (guardrail, type, action) → times, from the ledger's
    `guardrails` summaries (`guard:type:action=count,...`), grouped in SQL first (a few hundred
    distinct summaries at most are read)."""
    args: list[Any] = [since]
    rows = await _fetch(
        store,
        f"SELECT guardrails, COUNT(*) FROM usage_ledger WHERE at >= $1 AND guardrails IS NOT NULL"
        f"{_scope(scope, args)} GROUP BY guardrails ORDER BY 2 DESC LIMIT {MAX_GUARD_COMBINATIONS}",
        *args,
    )
    out: dict[tuple[str, str, str], int] = {}
    for summary, requests in rows:
        for part in str(summary).split(","):
            what, _, count = part.rpartition("=")
            names = what.split(":")
            if len(names) == 3 and count.isdigit():
                key = (names[0], names[1], names[2])
                out[key] = out.get(key, 0) + int(count) * int(requests)
    return out
