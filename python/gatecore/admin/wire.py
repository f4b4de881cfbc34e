"""Request and response bodies of the admin API (also the source of its OpenAPI schemas)."""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from gatecore.policy.fields import KeyPolicyFields, PolicyFields, partial_of

Role = Literal["admin", "team_admin", "viewer"]
Name = Annotated[str, Meta(min_length=1, max_length=200)]


class KeyCreate(KeyPolicyFields, forbid_unknown_fields=True, kw_only=True):
    """`POST /admin/v1/keys`. `team` and `user` take an id or a name."""

    name: Name
    team: str | None = None
    user: str | None = None
    role: Role | None = None
    expires_at: datetime.datetime | None = None
    expires_in_s: Annotated[float, Meta(gt=0)] | None = None


KeyUpdate = partial_of(
    KeyCreate,
    "KeyUpdate",
    "`PATCH /admin/v1/keys/{id}`: only the fields present change; null clears a limit.",
    leave_out=("expires_in_s",),
)


class KeyRotate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /admin/v1/keys/{id}/rotate`: the old secret stays valid for `grace_s` seconds."""

    grace_s: Annotated[float, Meta(ge=0)] | None = None


class KeyOut(KeyPolicyFields, kw_only=True):
    """A key as the API shows it: never the secret or its hash, only the prefix."""

    id: str
    name: str
    prefix: str
    status: Literal["active", "expired", "revoked"]
    team_id: str | None
    user_id: str | None
    role: str | None
    expires_at: datetime.datetime | None
    revoked_at: datetime.datetime | None
    previous_valid_until: datetime.datetime | None
    created_by: str
    created_at: datetime.datetime
    updated_at: datetime.datetime


class KeyCreated(KeyOut, kw_only=True):
    """The answer to a create or rotate: the only time the full key is shown."""

    key: str


class TenantCreate(PolicyFields, forbid_unknown_fields=True, kw_only=True):
    """`POST /admin/v1/orgs|teams|users`. `org` (for a team) and `team` (for a user) take an id or name."""

    name: Name
    org: str | None = None
    team: str | None = None
    email: str | None = None


TenantUpdate = partial_of(TenantCreate, "TenantUpdate", "`PATCH /admin/v1/orgs|teams|users/{id or name}`.")


class TenantOut(PolicyFields, kw_only=True):
    id: str
    kind: Literal["org", "team", "user"]
    name: str
    parent_id: str | None
    email: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


class AuditOut(msgspec.Struct, kw_only=True):
    id: str
    at: datetime.datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    detail: dict[str, Any]


class ListOf(msgspec.Struct):
    """`{"data": [...]}`, the shape of every list answer."""

    data: list[Any]
