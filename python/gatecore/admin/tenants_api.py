"""`/admin/v1/orgs`, `/teams`, `/users`: one handler set for the three tenant levels."""

from __future__ import annotations

from typing import Any

import msgspec

from gatecore.admin.access import Caller, check_metadata, check_models
from gatecore.admin.convert import tenant_out
from gatecore.admin.wire import ListOf, TenantCreate, TenantOut
from gatecore.errors import InvalidRequest
from gatecore.identity.records import ORG, PARENT_KIND, TEAM, USER, Tenant
from gatecore.identity.repository import IdentityRepository
from gatecore.policy.fields import carried


class TenantsApi:
    """CRUD of one tenant kind. Writes need the admin role; a key that belongs to a team (a
    team_admin, or a team's viewer) reads its own team and its users only."""

    def __init__(self, repository: IdentityRepository, kind: str, models: frozenset[str]):
        self.repository = repository
        self.kind = kind
        self.models = models
        self.parent_field = PARENT_KIND[kind]  # "org" for teams, "team" for users, None for orgs

    async def index(self, caller: Caller) -> ListOf:
        if caller.scope is not None:
            if self.kind == TEAM:
                return ListOf([tenant_out(await self.repository.tenant(TEAM, caller.scope))])
            if self.kind == USER:
                return ListOf([tenant_out(t) for t in await self.repository.tenants(USER, caller.scope)])
            caller.require_global("organizations")
        return ListOf([tenant_out(t) for t in await self.repository.tenants(self.kind)])

    async def get(self, caller: Caller, ref: str) -> TenantOut:
        tenant = await self.repository.tenant(self.kind, ref)
        if caller.scope is not None:
            own = tenant.id if self.kind == TEAM else tenant.parent_id if self.kind == USER else None
            caller.require_team(own)
        return tenant_out(tenant)

    async def create(self, caller: Caller, body: TenantCreate) -> TenantOut:
        caller.require_admin()
        self._check(body.org, body.team, body.models)
        check_metadata(body.metadata)
        parent = body.org if self.kind == TEAM else body.team if self.kind == USER else None
        tenant = carried(body, Tenant, id="", kind=self.kind, parent_id=parent)
        return tenant_out(await self.repository.create_tenant(tenant, caller.actor))

    async def update(self, caller: Caller, ref: str, body: msgspec.Struct) -> TenantOut:
        """Apply a TenantUpdate body: the fields present change."""
        caller.require_admin()
        changes: dict[str, Any] = {
            field: value
            for field in body.__struct_fields__
            if (value := getattr(body, field)) is not msgspec.UNSET
        }
        for field in (ORG, TEAM):
            # Present and null is still a field this level does not have (not a 500 further down).
            if field in changes and field != self.parent_field:
                raise InvalidRequest(f"A {self.kind} has no '{field}' field.", param=field)
        self._check(changes.get("org"), changes.get("team"), changes.get("models"))
        check_metadata(changes.get("metadata"))
        if self.parent_field is not None and self.parent_field in changes:
            changes["parent_id"] = changes.pop(self.parent_field)
        return tenant_out(await self.repository.update_tenant(self.kind, ref, changes, caller.actor))

    async def delete(self, caller: Caller, ref: str) -> None:
        caller.require_admin()
        await self.repository.delete_tenant(self.kind, ref, caller.actor)

    def _check(self, org: str | None, team: str | None, models: list[str] | None) -> None:
        for field, value in ((ORG, org), (TEAM, team)):
            if value is not None and field != self.parent_field:
                raise InvalidRequest(f"A {self.kind} has no '{field}' field.", param=field)
        check_models(models, self.models)
