"""`/admin/v1/keys`: create (the secret shown once), list, read, update, rotate, revoke."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec

from gatecore.admin.access import TEAM_ADMIN, VIEWER, Caller, check_metadata, check_models
from gatecore.admin.convert import key_out, to_epoch
from gatecore.admin.wire import KeyCreate, KeyCreated, KeyOut, KeyRotate, ListOf
from gatecore.errors import Forbidden, InvalidRequest
from gatecore.identity.records import ApiKey
from gatecore.identity.repository import IdentityRepository
from gatecore.policy.fields import carried


class KeysApi:
    """The key endpoints; `models` is the set of configured model names a key may be limited to."""

    def __init__(self, repository: IdentityRepository, models: frozenset[str], rotation_grace_s: float):
        self.repository = repository
        self.models = models
        self.rotation_grace_s = rotation_grace_s

    async def index(self, caller: Caller) -> ListOf:
        team = caller.team_id if caller.role == TEAM_ADMIN else None
        now = time.time()
        return ListOf([key_out(k, now) for k in await self.repository.keys(team)])

    async def get(self, caller: Caller, key_id: str) -> KeyOut:
        key = await self.repository.key(key_id)
        caller.require_team(key.team_id)
        return key_out(key, time.time())

    async def create(self, caller: Caller, body: KeyCreate) -> KeyCreated:
        caller.require_writer()
        if caller.role == TEAM_ADMIN:
            body.team = body.team or caller.team_id
            self._team_admin_may_grant(body.role)
        check_models(body.models, self.models)
        check_metadata(body.metadata)
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
        return _created(key, secret)

    async def update(self, caller: Caller, key_id: str, body: msgspec.Struct) -> KeyOut:
        """Apply a KeyUpdate body: the fields present change."""
        caller.require_writer()
        current = await self.repository.key(key_id)
        caller.require_team(current.team_id)
        changes: dict[str, Any] = {
            field: value
            for field in body.__struct_fields__
            if (value := getattr(body, field)) is not msgspec.UNSET
        }
        if caller.role == TEAM_ADMIN and "role" in changes:
            self._team_admin_may_grant(changes["role"])
        if "models" in changes:
            check_models(changes["models"], self.models)
        check_metadata(changes.get("metadata"))
        renamed = {"team": "team_id", "user": "user_id"}
        changes = {renamed.get(name, name): value for name, value in changes.items()}
        if "expires_at" in changes and changes["expires_at"] is not None:
            changes["expires_at"] = to_epoch(changes["expires_at"])
        key = await self.repository.update_key(key_id, changes, caller.actor, _owned_by(caller))
        return key_out(key, time.time())

    async def rotate(self, caller: Caller, key_id: str, body: KeyRotate) -> KeyCreated:
        caller.require_writer()
        caller.require_team((await self.repository.key(key_id)).team_id)
        grace = self.rotation_grace_s if body.grace_s is None else body.grace_s
        key, secret = await self.repository.rotate_key(key_id, grace, caller.actor)
        return _created(key, secret)

    async def revoke(self, caller: Caller, key_id: str) -> KeyOut:
        caller.require_writer()
        caller.require_team((await self.repository.key(key_id)).team_id)
        return key_out(await self.repository.revoke_key(key_id, caller.actor), time.time())

    @staticmethod
    def _team_admin_may_grant(role: str | None) -> None:
        if role not in (None, VIEWER):
            raise Forbidden("A team_admin key may only create inference or viewer keys.")


def _owned_by(caller: Caller) -> Callable[[ApiKey], None] | None:
    """For a team_admin: refuses a key that would (after resolving its team and user) leave its team."""
    if caller.role != TEAM_ADMIN:
        return None
    return lambda key: caller.require_team(key.team_id)


def _created(key: ApiKey, secret: str) -> KeyCreated:
    shown = key_out(key, time.time())
    return KeyCreated(key=secret, **msgspec.structs.asdict(shown))
