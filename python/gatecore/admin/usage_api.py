"""`GET /admin/v1/usage?group_by=key|team|user|org|model|deployment|day&from=&to=[&format=csv]`.

Totals of the usage ledger per group (DESIGN.md §3). `admin` keys and global `viewer` keys see
everything; a key that belongs to a team (`team_admin`, or a team's `viewer`) sees its team's requests
only. `from` (inclusive) and `to` (exclusive) are
RFC 3339 times (`2026-11-01T00:00:00Z`; a time without an offset is UTC) or epoch seconds.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime

import msgspec

from gatecore.admin.access import Caller
from gatecore.errors import InvalidRequest
from gatecore.ledger.repository import GROUPS, LedgerRepository, UsageGroup

CSV = "text/csv; charset=utf-8"
CSV_COLUMNS = (
    "group",
    "name",
    "requests",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "errors",
)


class UsageReport(msgspec.Struct, frozen=True):
    data: list[UsageGroup]


class TextAnswer:
    """An admin answer that is not JSON: its body and content type."""

    __slots__ = ("body", "content_type")

    def __init__(self, body: bytes, content_type: str):
        self.body = body
        self.content_type = content_type


def parse_time(value: str, param: str) -> float:
    """Epoch seconds of an RFC 3339 time or of a number of epoch seconds; 400 otherwise."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):  # `nan`, `inf`, 1e999: no time
            raise InvalidRequest(f"'{param}' must be a finite number of epoch seconds.", param=param)
        return number
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"'{param}' must be an RFC 3339 time (2026-11-01T00:00:00Z) or epoch seconds.", param=param
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet will not run: text starting with `= + - @` (or a tab or carriage
    return, which some strip first) gets a leading `'` (OWASP's CSV-injection advice). Client
    strings reach these exports (model names, key and team names). Numbers are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def render_csv(groups: list[UsageGroup]) -> bytes:
    """The report as CSV with a header line (the JSON field names)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for g in groups:
        writer.writerow(
            [
                csv_cell(g.group),
                csv_cell(g.name),
                g.requests,
                g.input_tokens,
                g.output_tokens,
                g.cached_tokens,
                g.cost_usd,
                g.errors,
            ]
        )
    return out.getvalue().encode()


class UsageApi:
    """The usage report of the admin API."""

    def __init__(self, repository: LedgerRepository):
        self.repository = repository

    async def report(self, caller: Caller, query: dict[str, list[str]]) -> UsageReport | TextAnswer:
        group_by = _one(query, "group_by") or "key"
        if group_by not in GROUPS:
            raise InvalidRequest(
                f"'group_by' must be one of {', '.join(GROUPS)}.", param="group_by", code="invalid_group_by"
            )
        fmt = _one(query, "format") or "json"
        if fmt not in ("json", "csv"):
            raise InvalidRequest("'format' must be json or csv.", param="format")
        since = _time(query, "from")
        until = _time(query, "to")
        groups = await self.repository.usage(group_by, since, until, caller.scope)
        if fmt == "csv":
            return TextAnswer(render_csv(groups), CSV)
        return UsageReport(groups)


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _time(query: dict[str, list[str]], name: str) -> float | None:
    value = _one(query, name)
    return None if value is None else parse_time(value, name)
