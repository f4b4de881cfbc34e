"""`gatecore prompts push DIR | list | show | promote | rollback`: published prompts straight in the
store, through the admin API's handlers (same checks, same audit log, actor `cli`).

`push DIR` loads prompts kept in git as files: each `*.yaml`, `*.yml` or `*.json` file in DIR is one
prompt's body as `POST /admin/v1/prompts` takes it (`name` defaults to the file's stem). Templates go
before chains (a chain's steps must exist); a file equal to the prompt's latest version publishes
nothing, so pushing the same directory twice adds no version.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import msgspec
import yaml

from gatecore.admin.access import Caller
from gatecore.admin.prompts_api import PromptsApi
from gatecore.config.schema import GatecoreConfig
from gatecore.errors import GatewayError, InvalidRequest
from gatecore.identity.repository import IdentityRepository
from gatecore.policy.key_policy import KeyPolicy
from gatecore.prompts.catalog import PromptCatalog
from gatecore.prompts.repository import PRODUCTION, PromptRepository
from gatecore.store import StoreError, open_store
from gatecore.store.migrations import migrate

ACTOR = "cli"
MAX_FILES = 1000
MAX_FILE_BYTES = 1024 * 1024


def add_prompts_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `prompts` subcommand and its actions."""
    prompts = commands.add_parser("prompts", help="manage published prompts in the store")
    prompts.add_argument("--config", help="config file (for store.url and the model names)")
    actions = prompts.add_subparsers(dest="action", required=True)
    push = actions.add_parser("push", help="publish the prompt files of a directory (new versions only)")
    push.add_argument("dir")
    actions.add_parser("list", help="list prompts")
    show = actions.add_parser("show", help="a prompt with its versions and labels, or one version")
    show.add_argument("name")
    show.add_argument("--version", type=int)
    promote = actions.add_parser("promote", help="point a label at a version")
    promote.add_argument("name")
    promote.add_argument("--version", type=int, required=True)
    promote.add_argument("--label", default=PRODUCTION)
    rollback = actions.add_parser("rollback", help="move a label back (default: one version back)")
    rollback.add_argument("name")
    rollback.add_argument("--label", default=PRODUCTION)
    rollback.add_argument("--to", type=int)


def run_prompts(args: argparse.Namespace, config: GatecoreConfig) -> int:
    """Run one `prompts` action; prints JSON on stdout, errors on stderr."""
    try:
        files = _read_specs(Path(args.dir)) if args.action == "push" else []
        output = asyncio.run(_run(args, config, files))
    except (GatewayError, StoreError, OSError, yaml.YAMLError, msgspec.DecodeError) as exc:
        print(f"gatecore prompts: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(msgspec.json.encode(output) + b"\n")
    return 0


async def _run(
    args: argparse.Namespace, config: GatecoreConfig, files: list[tuple[str, dict[str, Any]]]
) -> Any:
    assert config.store.url is not None
    store = await open_store(config.store.url)
    try:
        await migrate(store)
        catalog = PromptCatalog(PromptRepository(store))
        api = PromptsApi(
            catalog,
            IdentityRepository(store, None),
            frozenset(m.name for m in config.models),
            frozenset(g.name for g in config.guardrails),
        )
        caller = Caller(KeyPolicy(ACTOR, ACTOR, "", None, source="cli", role="admin"))
        if args.action == "push":
            return await _push(api, caller, files)
        if args.action == "list":
            return await api.index(caller)
        if args.action == "show":
            if args.version is not None:
                return await api.version(caller, args.name, str(args.version))
            return await api.get(caller, args.name)
        if args.action == "promote":
            body = msgspec.json.encode({"version": args.version})
            return await api.move_label(caller, args.name, args.label, body)
        head = await api.get(caller, args.name)
        label = head["labels"].get(args.label)
        if label is None:
            raise InvalidRequest(f"The prompt '{args.name}' has no label '{args.label}'.")
        current = max(int(v) for v in label["versions"])
        target = args.to if args.to is not None else current - 1
        if target < 1:
            raise InvalidRequest(f"'{args.label}' is at version {current}; there is none before it.")
        return await api.move_label(caller, args.name, args.label, msgspec.json.encode({"version": target}))
    finally:
        await store.close()


def _read_specs(directory: Path) -> list[tuple[str, dict[str, Any]]]:
    """The prompt files of `directory`: (file name, body), templates before chains."""
    files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
    if len(files) > MAX_FILES:
        raise InvalidRequest(f"More than {MAX_FILES} prompt files in {directory}.")
    specs: list[tuple[str, dict[str, Any]]] = []
    for path in files:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidRequest(f"{path.name} is larger than {MAX_FILE_BYTES} bytes.")
        spec = (
            yaml.safe_load(path.read_text())
            if path.suffix != ".json"
            else msgspec.json.decode(path.read_bytes())
        )
        if not isinstance(spec, dict):
            raise InvalidRequest(f"{path.name}: a prompt file holds one object.")
        spec.setdefault("name", path.stem)
        specs.append((path.name, spec))
    return sorted(specs, key=lambda item: "steps" in item[1])  # templates first


async def _push(
    api: PromptsApi, caller: Caller, files: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    results = []
    for file, spec in files:
        try:
            result = await api.publish(caller, None, msgspec.json.encode(spec), if_changed=True)
        except GatewayError as exc:
            exc.message = f"{file}: {exc.message}"
            raise
        results.append({**result, "file": file})
    return results
