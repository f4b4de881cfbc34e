"""Benchmark runs (`x-gatecore-run-id`, or a key with `run_id` metadata) in the admin API:

- `GET /admin/v1/runs?limit=100`: the latest runs (id, first and last arrival, requests);
- `GET /admin/v1/runs/{id}`: the run's summary (ledger/runs.py);
- `GET /admin/v1/runs/{id}/requests?format=csv|json`: every request's timings, streamed page by page
  (CSV with a header row, or `{"run_id": …, "data": [...]}`), so a long run is never held whole.

`admin` keys and global `viewer` keys see every run; a key that belongs to a team (`team_admin`, or a
team's `viewer`) sees only its team's requests of a run (a run with none of them is a 404 for it, like
an unknown run).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import msgspec
from msgspec.structs import astuple

from gatecore.admin.access import Caller
from gatecore.admin.usage_api import csv_cell
from gatecore.errors import InvalidRequest, NotFound
from gatecore.ledger.runs import EXPORT_COLUMNS, RunListed, RunRequest, RunsRepository, RunSummary
from gatecore.run_id import valid_run_id

CSV = "text/csv; charset=utf-8"
JSON = "application/json"


class RunList(msgspec.Struct, frozen=True):
    data: list[RunListed]


class StreamAnswer:
    """An admin answer written as it is produced: its content type and its parts."""

    __slots__ = ("content_type", "parts")

    def __init__(self, content_type: str, parts: AsyncIterator[bytes]):
        self.content_type = content_type
        self.parts = parts


def csv_rows(requests: list[RunRequest], header: bool = False) -> bytes:
    """Requests as CSV lines (booleans `true`/`false`, nulls empty), the header line first if asked."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(EXPORT_COLUMNS)
    streamed = EXPORT_COLUMNS.index("streamed")
    writer.writerows(
        (
            *map(csv_cell, row[:streamed]),
            "true" if row[streamed] else "false",
            *map(csv_cell, row[streamed + 1 :]),
        )
        for row in map(astuple, requests)
    )
    return out.getvalue().encode()


async def export_parts(
    pages: AsyncIterator[list[RunRequest]], first: list[RunRequest], run_id: str, fmt: str
) -> AsyncIterator[bytes]:
    """The export's bytes, page by page (`first` is the page already read)."""
    encode = msgspec.json.Encoder().encode
    if fmt == "csv":
        yield csv_rows(first, header=True)
        async for page in pages:
            yield csv_rows(page)
        return
    yield b'{"run_id":' + encode(run_id) + b',"data":['
    yield b",".join(encode(r) for r in first)
    async for page in pages:
        yield b"," + b",".join(encode(r) for r in page)
    yield b"]}"


class RunsApi:
    """The benchmark-run routes of the admin API."""

    def __init__(self, repository: RunsRepository):
        self.repository = repository

    async def index(self, caller: Caller, query: dict[str, list[str]]) -> RunList:
        try:
            limit = int(_one(query, "limit") or "100")
        except ValueError:
            raise InvalidRequest("'limit' must be an integer.", param="limit") from None
        if not 1 <= limit <= 1000:
            raise InvalidRequest("'limit' must be between 1 and 1000.", param="limit")
        return RunList(await self.repository.latest(limit, _team(caller)))

    async def summary(self, caller: Caller, raw_id: str) -> RunSummary:
        run_id = _run_id(raw_id)
        summary = await self.repository.summary(run_id, _team(caller))
        if summary is None:
            raise _unknown(run_id)
        return summary

    async def requests(self, caller: Caller, raw_id: str, query: dict[str, list[str]]) -> StreamAnswer:
        run_id = _run_id(raw_id)
        fmt = _one(query, "format") or "json"
        if fmt not in ("json", "csv"):
            raise InvalidRequest("'format' must be json or csv.", param="format")
        pages = aiter(self.repository.requests(run_id, _team(caller)))
        # The first page is read before the answer starts, so an unknown run is still a 404.
        first = await anext(pages, None)
        if first is None:
            raise _unknown(run_id)
        return StreamAnswer(CSV if fmt == "csv" else JSON, export_parts(pages, first, run_id, fmt))


def _run_id(raw: str) -> str:
    # granian hands over the path percent-decoded (`bench%3A1` is `bench:1` here).
    run_id = valid_run_id(raw)
    if run_id is None:  # no run can have this id
        raise _unknown(raw[:130])
    return run_id


def _unknown(run_id: str) -> NotFound:
    return NotFound(f"No benchmark run '{run_id}' in the ledger.", code="run_not_found")


def _team(caller: Caller) -> str | None:
    return caller.scope


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None
