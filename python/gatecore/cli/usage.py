"""`gatecore usage --group-by team --since 7d [--until …] [--format table|json|csv]`: the usage
report (the admin API's `/usage`) read straight from the store, so it works with no server running."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time

import msgspec

from gatecore.admin.usage_api import UsageReport, parse_time, render_csv
from gatecore.config.schema import GatecoreConfig
from gatecore.errors import GatewayError
from gatecore.ledger.repository import GROUPS, LedgerRepository, UsageGroup
from gatecore.store import StoreError, open_store
from gatecore.store.migrations import migrate

_AGO = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def add_usage_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `usage` subcommand."""
    usage = commands.add_parser("usage", help="spend and tokens from the usage ledger, grouped")
    usage.add_argument("--config", help="config file (for store.url)")
    usage.add_argument("--group-by", default="key", choices=list(GROUPS))
    usage.add_argument(
        "--since", default="30d", help="start: a duration ago (90m, 24h, 7d, 2w), RFC 3339 or epoch"
    )
    usage.add_argument("--until", help="end (exclusive), same forms as --since; default: now")
    usage.add_argument("--format", default="table", choices=["table", "json", "csv"])


def since_epoch(value: str, now: float, param: str = "since") -> float:
    """Epoch seconds of `7d` / `24h` / `90m` / `30s` / `2w` ago, or of an RFC 3339 time or epoch."""
    found = _AGO.fullmatch(value.strip())
    if found is not None:
        return now - float(found.group(1)) * _UNIT_S[found.group(2)]
    return parse_time(value, param)


def run_usage(args: argparse.Namespace, config: GatecoreConfig) -> int:
    """Print the report; errors on stderr with exit status 1."""
    now = time.time()
    try:
        since = since_epoch(args.since, now)
        until = since_epoch(args.until, now, "until") if args.until else None
        groups = asyncio.run(_report(config, args.group_by, since, until))
    except (GatewayError, StoreError) as exc:
        print(f"gatecore usage: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    if args.format == "json":
        sys.stdout.buffer.write(msgspec.json.encode(UsageReport(groups)) + b"\n")
    elif args.format == "csv":
        sys.stdout.buffer.write(render_csv(groups))
    else:
        sys.stdout.write(_table(groups))
    return 0


async def _report(
    config: GatecoreConfig, group_by: str, since: float, until: float | None
) -> list[UsageGroup]:
    assert config.store.url is not None
    store = await open_store(config.store.url)
    try:
        await migrate(store)
        return await LedgerRepository(store).usage(group_by, since, until)
    finally:
        await store.close()


def _table(groups: list[UsageGroup]) -> str:
    header = ("GROUP", "NAME", "REQUESTS", "INPUT", "OUTPUT", "CACHED", "COST_USD", "ERRORS")
    lines = [
        (
            g.group or "-",
            g.name or "-",
            str(g.requests),
            str(g.input_tokens),
            str(g.output_tokens),
            str(g.cached_tokens),
            f"{g.cost_usd:.6f}",
            str(g.errors),
        )
        for g in groups
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in [header, *lines]
    )
