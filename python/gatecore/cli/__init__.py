"""`gatecore serve | check | keys | usage | runs | prompts`: one module a command, dispatched from `main`."""

from __future__ import annotations

import argparse
import os
import sys

from gatecore import __version__
from gatecore.cli.keys import add_keys_parser, run_keys
from gatecore.cli.prompts import add_prompts_parser, run_prompts
from gatecore.cli.runs import add_runs_parser, run_runs
from gatecore.cli.serve import add_serve_parser, run_check, run_serve
from gatecore.cli.usage import add_usage_parser, run_usage
from gatecore.config.load import ConfigError
from gatecore.config.source import CONFIG_ENV, read_config


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `gatecore` command."""
    parser = argparse.ArgumentParser(prog="gatecore", description="A fast OpenAI-compatible AI gateway.")
    parser.add_argument("--version", action="version", version=f"gatecore {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_parser(commands)
    add_keys_parser(commands)
    add_usage_parser(commands)
    add_runs_parser(commands)
    add_prompts_parser(commands)

    args = parser.parse_args(argv)
    if args.command == "check":
        return run_check(args.config)
    if args.command in ("keys", "usage", "runs", "prompts"):
        return _store_command(args)
    return run_serve(args)


def _store_command(args: argparse.Namespace) -> int:
    """`keys`, `usage` and `runs`: commands that work on the store named by the config."""
    path = args.config or os.environ.get(CONFIG_ENV) or None
    try:
        config = read_config(path, demo=False)
    except ConfigError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 2
    if args.command == "runs":
        return run_runs(args, config)
    if args.command == "prompts":
        return run_prompts(args, config)
    return run_keys(args, config) if args.command == "keys" else run_usage(args, config)
