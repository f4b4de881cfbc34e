"""`gatecore serve` (run the gateway) and `gatecore check` (validate a config file)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys

from gatecore.config.load import ConfigError
from gatecore.config.source import CONFIG_ENV, read_config
from gatecore.pipeline.chain import LINKS
from gatecore.pipeline.plugins import placed_links
from gatecore.prompts.augment import augment_errors


def add_serve_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `serve` and `check` subcommands."""
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


def run_check(path: str) -> int:
    """Print every error of the config file at `path` (exit 1), or `ok`."""
    try:
        config = read_config(path, demo=False)
        placed_links(LINKS, config.pipeline)  # the installed stages, where the config places them
        if errors := augment_errors(config.prompts):  # templates are parsed by the stage's module
            raise ConfigError(errors)
    except ConfigError as exc:
        for error in exc.errors:
            print(error)
        return 1
    print("ok")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Read the config (exit 2 on errors) and serve until stopped; flags override the config."""
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    path = args.config or os.environ.get(CONFIG_ENV) or None
    try:
        config = read_config(path, demo=args.demo)
        if errors := augment_errors(config.prompts):
            raise ConfigError(errors)
    except ConfigError as exc:
        print(f"gatecore: invalid config{f' {path}' if path else ''}:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 2
    host = args.host or config.server.host
    if config.auth.unauthenticated == "loopback" and not _loopback(host):
        print(
            f"gatecore: refusing to serve without keys on {host[:100]}: no credential source is configured "
            "and auth.unauthenticated is 'loopback'. Set auth.master_key (GATECORE_MASTER_KEY), or "
            "auth.unauthenticated: anywhere to let whoever reaches the port spend the providers' credentials.",
            file=sys.stderr,
        )
        return 2
    from gatecore.server.serve import serve

    serve(
        path,
        args.demo,
        host=host,
        port=args.port if args.port is not None else config.server.port,
        workers=args.workers if args.workers is not None else config.server.workers,
        log_level=args.log_level,
        max_rss_mb=config.server.worker_max_rss_mb,
        config_watch=config.server.config_watch,
    )
    return 0


def _loopback(host: str) -> bool:
    """`host` is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
