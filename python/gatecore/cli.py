"""`gatecore serve | check | keys | usage | runs`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from gatecore import __version__
from gatecore.config.load import ConfigError
from gatecore.config.source import CONFIG_ENV, read_config
from gatecore.keys_cli import add_keys_parser, run_keys
from gatecore.pipeline.chain import LINKS
from gatecore.pipeline.plugins import placed_links
from gatecore.runs_cli import add_runs_parser, run_runs
from gatecore.usage_cli import add_usage_parser, run_usage


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `gatecore` command."""
    parser = argparse.ArgumentParser(prog="gatecore", description="A fast OpenAI-compatible AI gateway.")
    parser.add_argument("--version", action="version", version=f"gatecore {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument(
        "--config", help=f"config file (YAML or JSON); default: ${CONFIG_ENV} or the environment"
    )
    serve.add_argument("--host", help="address to listen on (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: server.port, 8080)")
    serve.add_argument("--workers", type=int, help="worker processes (default: server.workers, 1)")
    serve.add_argument(
        "--demo", action="store_true", help="add the built-in `echo` model (no network needed)"
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])

    check = commands.add_parser("check", help="validate a config file and print every error")
    check.add_argument("--config", required=True, help="config file to validate")
    add_keys_parser(commands)
    add_usage_parser(commands)
    add_runs_parser(commands)

    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(args.config)
    if args.command in ("keys", "usage", "runs"):
        return _store_command(args)
    return _serve(args)


def _check(path: str) -> int:
    try:
        config = read_config(path, demo=False)
        placed_links(LINKS, config.pipeline)  # the installed stages, where the config places them
    except ConfigError as exc:
        for error in exc.errors:
            print(error)
        return 1
    print("ok")
    return 0


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
    return run_keys(args, config) if args.command == "keys" else run_usage(args, config)


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    path = args.config or os.environ.get(CONFIG_ENV) or None
    try:
        config = read_config(path, demo=args.demo)
    except ConfigError as exc:
        print(f"gatecore: invalid config{f' {path}' if path else ''}:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 2
    from gatecore.server.serve import serve

    serve(
        path,
        args.demo,
        host=args.host or config.server.host,
        port=args.port if args.port is not None else config.server.port,
        workers=args.workers if args.workers is not None else config.server.workers,
        log_level=args.log_level,
        max_rss_mb=config.server.worker_max_rss_mb,
    )
    return 0
