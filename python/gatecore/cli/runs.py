"""`gatecore runs list | show ID | export ID --format csv|json`: benchmark runs (the admin API's
`/runs`) read straight from the store, so they work with no server running. `export` writes the
requests page by page, like the API."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import msgspec

from gatecore.admin.runs_api import RunList, export_parts
from gatecore.config.schema import GatecoreConfig
from gatecore.ledger.runs import Distribution, RunsRepository, RunSummary
from gatecore.run_id import valid_run_id
from gatecore.store import StoreError, open_store
from gatecore.store.migrations import migrate

T = TypeVar("T")


def add_runs_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `runs` subcommand and its actions."""
    runs = commands.add_parser("runs", help="benchmark runs (x-gatecore-run-id) from the usage ledger")
    actions = runs.add_subparsers(dest="action", required=True)
    latest = actions.add_parser("list", help="the latest runs")
    latest.add_argument("--limit", type=int, default=20)
    latest.add_argument("--format", default="table", choices=["table", "json"])
    show = actions.add_parser("show", help="a run's summary: throughput, TTFT, ITL, latency, overhead")
    show.add_argument("run_id")
    show.add_argument("--format", default="table", choices=["table", "json"])
    export = actions.add_parser("export", help="a run's per-request timings")
    export.add_argument("run_id")
    export.add_argument("--format", default="csv", choices=["csv", "json"])
    for action in (latest, show, export):
        action.add_argument("--config", help="config file (for store.url)")


def run_runs(args: argparse.Namespace, config: GatecoreConfig) -> int:
    """Print what was asked; errors on stderr with exit status 1."""
    if args.action != "list" and valid_run_id(args.run_id) is None:
        print(f"gatecore runs: '{args.run_id[:130]}' is not a run id", file=sys.stderr)
        return 1
    try:
        if args.action == "list":
            runs = _with_store(config, lambda r: r.latest(max(1, args.limit)))
            if args.format == "json":
                sys.stdout.buffer.write(msgspec.json.encode(RunList(runs)) + b"\n")
            else:
                sys.stdout.write(_list_table(RunList(runs)))
            return 0
        if args.action == "show":
            summary = _with_store(config, lambda r: r.summary(args.run_id))
            if summary is None:
                print(f"gatecore runs: no run '{args.run_id}' in the ledger", file=sys.stderr)
                return 1
            if args.format == "json":
                sys.stdout.buffer.write(msgspec.json.encode(summary) + b"\n")
            else:
                sys.stdout.write(_summary_text(summary))
            return 0
        return asyncio.run(_export(config, args.run_id, args.format))
    except StoreError as exc:
        print(f"gatecore runs: {exc}", file=sys.stderr)
        return 1


def _with_store(config: GatecoreConfig, read: Callable[[RunsRepository], Awaitable[T]]) -> T:
    async def go() -> T:
        assert config.store.url is not None
        store = await open_store(config.store.url)
        try:
            await migrate(store)
            return await read(RunsRepository(store))
        finally:
            await store.close()

    return asyncio.run(go())


async def _export(config: GatecoreConfig, run_id: str, fmt: str) -> int:
    assert config.store.url is not None
    store = await open_store(config.store.url)
    try:
        await migrate(store)
        pages = aiter(RunsRepository(store).requests(run_id))
        first = await anext(pages, None)
        if first is None:
            print(f"gatecore runs: no run '{run_id}' in the ledger", file=sys.stderr)
            return 1
        out = sys.stdout.buffer
        async for part in export_parts(pages, first, run_id, fmt):
            out.write(part)
        if fmt == "json":
            out.write(b"\n")
        out.flush()
        return 0
    finally:
        await store.close()


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _list_table(runs: RunList) -> str:
    rows = [("RUN", "FIRST", "LAST", "REQUESTS")]
    rows += [(r.run_id, _when(r.first_at), _when(r.last_at), str(r.requests)) for r in runs.data]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n" for row in rows
    )


def _summary_text(s: RunSummary) -> str:
    def dist(name: str, d: Distribution) -> str:
        if not d.count:
            return f"{name:<12} -\n"
        cells = [f"{label} {value:.3f}" for label, value in _points(d)]
        return f"{name:<12} n={d.count}  " + "  ".join(cells) + "\n"

    return (
        f"run          {s.run_id}\n"
        f"requests     {s.requests} ({s.errors} errors) from {_when(s.first_at)} to {_when(s.last_at)}\n"
        f"duration     {s.duration_s:.3f} s: {s.requests_per_s:.2f} requests/s, "
        f"{s.output_tokens_per_s:.1f} output tokens/s\n"
        f"tokens       {s.input_tokens} in, {s.output_tokens} out\n"
        + dist("ttft ms", s.ttft_ms)
        + dist("itl ms", s.itl_ms)
        + dist("latency ms", s.latency_ms)
        + dist("overhead ms", s.overhead_ms)
    )


def _points(d: Distribution) -> list[tuple[str, float]]:
    named = (("mean", d.mean), ("p50", d.p50), ("p90", d.p90), ("p99", d.p99), ("max", d.max))
    return [(label, value) for label, value in named if value is not None]
