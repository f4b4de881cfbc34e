"""`/admin/v1/keys`: create (the secret shown once), list, read, update, rotate, revoke."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from gatecore.admin.access import ADMIN, TEAM_ADMIN, Caller, check_metadata, check_models
from gatecore.admin.convert import key_out, to_epoch
from gatecore.admin.wire import KeyCreate, KeyCreated, KeyOut, KeyRotate, ListOf
from gatecore.errors import Forbidden, InvalidRequest
from gatecore.identity.records import ApiKey
from gatecore.identity.repository import IdentityRepository
from gatecore.policy.fields import carried


async def _nothing(key_id: str) -> None:
    return None


class KeysApi:
    """The key endpoints; `models` is the set of configured model names a key may be limited to.

    `written` is awaited with a key's id after each write, before the answer: the worker's auth stage
    reads the key back, so the secret a 201 or a rotation shows works in the very next request on
    this worker, and a revoked or rotated-out one is refused there at once (issue 17).
    """

    def __init__(
        self,
        repository: IdentityRepository,
        models: frozenset[str],
        rotation_grace_s: float,
        written: Callable[[str], Awaitable[None]] = _nothing,
    ):
        self.repository = repository
        self.models = models
        self.rotation_grace_s = rotation_grace_s
        self.written = written
        # Stored guardrails owned by a team: name → team id, read from the store (not this worker's
        # installed guards, which follow other workers' writes only at the next identity poll).
        self.guard_owners: Callable[[], Awaitable[dict[str, str]]] = _no_owners

    async def index(self, caller: Caller) -> ListOf:
        """Every key a global caller may see; a caller of a team, its team's keys (no admin key)."""
        now = time.time()
        keys = await self.repository.keys(caller.scope)
        if caller.scope is not None:
            keys = [k for k in keys if k.role != ADMIN]
        return ListOf([key_out(k, now) for k in keys])

    async def get(self, caller: Caller, key_id: str) -> KeyOut:
        key = await self.repository.key(key_id)
        caller.require_key_in_scope(key)
        return key_out(key, time.time())

    async def create(self, caller: Caller, body: KeyCreate) -> KeyCreated:
        caller.require_writer()
        if caller.role == TEAM_ADMIN:
            # Its keys belong to its team (never a global viewer); _owned_by checks the resolved team.
            body.team = body.team or caller.team_id
        caller.require_may_grant(body.role)
        check_models(body.models, self.models)
        check_metadata(body.metadata)
        await self._check_attached(caller, body.metadata)
        if body.expires_at is not None and body.expires_in_s is not None:
            raise InvalidRequest("Give expires_at or expires_in_s, not both.", param="expires_in_s")
        expires_at = to_epoch(body.expires_at) if body.expires_at is not None else None
        if body.expires_in_s is not None:
            expires_at = time.time() + body.expires_in_s
        key = carried(
            body,
            ApiKey,
            id="",
            prefix="",
            hash="",
            team_id=body.team,
            user_id=body.user,
            expires_at=expires_at,
        )
        key, secret = await self.repository.create_key(key, caller.actor, _owned_by(caller))
        await self.written(key.id)
        return _created(key, secret)

    async def update(self, caller: Caller, key_id: str, body: msgspec.Struct) -> KeyOut:
        """Apply a KeyUpdate body: the fields present change."""
        caller.require_writer()
        changes: dict[str, Any] = {
            field: value
            for field in body.__struct_fields__
            if (value := getattr(body, field)) is not msgspec.UNSET
        }
        if "role" in changes:
            caller.require_may_grant(changes["role"])
        if "models" in changes:
            check_models(changes["models"], self.models)
        check_metadata(changes.get("metadata"))
        await self._check_attached(caller, changes.get("metadata"))
        renamed = {"team": "team_id", "user": "user_id"}
        changes = {renamed.get(name, name): value for name, value in changes.items()}
        if "expires_at" in changes and changes["expires_at"] is not None:
            changes["expires_at"] = to_epoch(changes["expires_at"])
        key = await self.repository.update_key(key_id, changes, caller.actor, _owned_by(caller))
        await self.written(key.id)
        return key_out(key, time.time())

    async def rotate(self, caller: Caller, key_id: str, body: KeyRotate) -> KeyCreated:
        caller.require_writer()
        grace = self.rotation_grace_s if body.grace_s is None else body.grace_s
        key, secret = await self.repository.rotate_key(key_id, grace, caller.actor, _owned_by(caller))
        await self.written(key.id)
        return _created(key, secret)

    async def revoke(self, caller: Caller, key_id: str) -> KeyOut:
        caller.require_writer()
        key = await self.repository.revoke_key(key_id, caller.actor, _owned_by(caller))
        await self.written(key.id)
        return key_out(key, time.time())

    async def _check_attached(self, caller: Caller, metadata: dict[str, Any] | None) -> None:
        """A key confined to a team attaches no other team's guardrail (a request would name a
        guard that is not its team's: guardrails/stage.py refuses those requests anyway)."""
        if caller.scope is None or not metadata or not isinstance(metadata.get("guardrails"), list):
            return
        owners = await self.guard_owners()
        for name in metadata["guardrails"]:
            owner = owners.get(name)
            if owner is not None and owner != caller.scope:
                raise Forbidden(f"Guardrail '{str(name)[:100]}' belongs to another team.")


async def _no_owners() -> dict[str, str]:
    return {}


def _owned_by(caller: Caller) -> Callable[[ApiKey], None] | None:
    """For a team_admin: refuses a key (as stored, and as it would be written, owners resolved)
    outside its team or with a role above its own. Checked inside the write transaction, so the
    row judged is the row changed."""
    if caller.role != TEAM_ADMIN:
        return None
    return caller.require_manages


def _created(key: ApiKey, secret: str) -> KeyCreated:
    shown = key_out(key, time.time())
    return KeyCreated(key=secret, **msgspec.structs.asdict(shown))
