"""`gatecore keys create | list | revoke | rotate`: manage virtual keys straight in the store.

The same repository as the admin API (same rules, same audit log, actor `cli`), so it works before
any server runs and running servers pick the change up within their poll interval.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import msgspec

from gatecore.admin.access import Caller
from gatecore.admin.bounds import check_bounds
from gatecore.admin.keys_api import KeysApi
from gatecore.admin.wire import KeyCreate, KeyRotate
from gatecore.config.schema import GatecoreConfig
from gatecore.errors import GatewayError, InvalidRequest
from gatecore.identity.repository import IdentityRepository
from gatecore.identity.secrets import KeyHasher, hash_secret
from gatecore.policy.key_policy import KeyPolicy
from gatecore.store import StoreError, open_store
from gatecore.store.migrations import migrate

ACTOR = "cli"


def add_keys_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `keys` subcommand and its actions."""
    keys = commands.add_parser("keys", help="manage virtual API keys in the store")
    keys.add_argument("--config", help="config file (for store.url and auth.key_hash_secret)")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key and print it (shown only this once)")
    create.add_argument("--name", required=True)
    create.add_argument("--team", help="team id or name")
    create.add_argument("--user", help="user id or name")
    create.add_argument("--role", choices=["admin", "team_admin", "viewer"])
    create.add_argument("--models", help="comma-separated model names (default: all the owner allows)")
    create.add_argument("--rpm", type=int)
    create.add_argument("--tpm", type=int)
    create.add_argument("--budget-usd", type=float)
    create.add_argument("--expires-in-s", type=float)
    actions.add_parser("list", help="list keys (prefixes only)")
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    rotate = actions.add_parser("rotate", help="new secret for a key; the old one works for --grace-s")
    rotate.add_argument("id")
    rotate.add_argument("--grace-s", type=float)


def run_keys(args: argparse.Namespace, config: GatecoreConfig) -> int:
    """Run one `keys` action; prints JSON on stdout, errors on stderr."""
    try:
        output = asyncio.run(_run(args, config))
    except (GatewayError, StoreError) as exc:
        print(f"gatecore keys: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(output + b"\n")
    return 0


async def _run(args: argparse.Namespace, config: GatecoreConfig) -> bytes:
    assert config.store.url is not None
    store = await open_store(config.store.url)
    try:
        await migrate(store)
        secret = hash_secret(config.auth)
        repository = IdentityRepository(store, KeyHasher(secret) if secret else None)
        models = frozenset(m.name for m in config.models)
        keys = KeysApi(repository, models, config.auth.rotation_grace_s)
        # The CLI acts with the admin role, under its own name in the audit log.
        caller = Caller(KeyPolicy(ACTOR, ACTOR, "", None, source="cli", role="admin"))
        if args.action == "list":
            return msgspec.json.encode(await keys.index(caller))
        if args.action == "revoke":
            return msgspec.json.encode(await keys.revoke(caller, args.id))
        if args.action == "rotate":
            rotate = KeyRotate(grace_s=args.grace_s)
            check_bounds(rotate)  # as the admin API checks them: a 1e300 grace must not commit
            return msgspec.json.encode(await keys.rotate(caller, args.id, rotate))
        fields = {
            "name": args.name,
            "team": args.team,
            "user": args.user,
            "role": args.role,
            "models": [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None,
            "rpm": args.rpm,
            "tpm": args.tpm,
            "budget_usd": args.budget_usd,
            "expires_in_s": args.expires_in_s,
        }
        try:  # convert, not the constructor: it checks the same constraints as the admin API
            body = msgspec.convert(fields, KeyCreate)
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"Invalid key: {exc}.") from None
        check_bounds(body)
        return msgspec.json.encode(await keys.create(caller, body))
    finally:
        await store.close()
