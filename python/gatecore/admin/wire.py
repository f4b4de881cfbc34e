"""Request and response bodies of the admin API (also the source of its OpenAPI schemas)."""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

Role = Literal["admin", "team_admin", "viewer"]
Count = Annotated[int, Meta(ge=0)]
Usd = Annotated[float, Meta(ge=0)]
Name = Annotated[str, Meta(min_length=1, max_length=200)]


class KeyCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /admin/v1/keys`. `team` and `user` take an id or a name."""

    name: Name
    team: str | None = None
    user: str | None = None
    role: Role | None = None
    models: list[str] | None = None
    rpm: Count | None = None
    tpm: Count | None = None
    max_parallel: Count | None = None
    budget_usd: Usd | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    tags: list[str] = msgspec.field(default_factory=list)
    expires_at: datetime.datetime | None = None
    expires_in_s: Annotated[float, Meta(gt=0)] | None = None


class KeyUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`PATCH /admin/v1/keys/{id}`: only the fields present change; null clears a limit."""

    name: Name | UnsetType = UNSET
    team: str | UnsetType | None = UNSET
    user: str | UnsetType | None = UNSET
    role: Role | UnsetType | None = UNSET
    models: list[str] | UnsetType | None = UNSET
    rpm: Count | UnsetType | None = UNSET
    tpm: Count | UnsetType | None = UNSET
    max_parallel: Count | UnsetType | None = UNSET
    budget_usd: Usd | UnsetType | None = UNSET
    metadata: dict[str, Any] | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET
    expires_at: datetime.datetime | UnsetType | None = UNSET


class KeyRotate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /admin/v1/keys/{id}/rotate`: the old secret stays valid for `grace_s` seconds."""

    grace_s: Annotated[float, Meta(ge=0)] | None = None


class KeyOut(msgspec.Struct, kw_only=True):
    """A key as the API shows it: never the secret or its hash, only the prefix."""

    id: str
    name: str
    prefix: str
    status: Literal["active", "expired", "revoked"]
    team_id: str | None
    user_id: str | None
    role: str | None
    models: list[str] | None
    rpm: int | None
    tpm: int | None
    max_parallel: int | None
    budget_usd: float | None
    metadata: dict[str, Any]
    tags: list[str]
    expires_at: datetime.datetime | None
    revoked_at: datetime.datetime | None
    previous_valid_until: datetime.datetime | None
    created_by: str
    created_at: datetime.datetime
    updated_at: datetime.datetime


class KeyCreated(KeyOut, kw_only=True):
    """The answer to a create or rotate: the only time the full key is shown."""

    key: str


class TenantCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /admin/v1/orgs|teams|users`. `org` (for a team) and `team` (for a user) take an id or name."""

    name: Name
    org: str | None = None
    team: str | None = None
    email: str | None = None
    models: list[str] | None = None
    rpm: Count | None = None
    tpm: Count | None = None
    max_parallel: Count | None = None
    budget_usd: Usd | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class TenantUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`PATCH /admin/v1/orgs|teams|users/{id or name}`."""

    name: Name | UnsetType = UNSET
    org: str | UnsetType | None = UNSET
    team: str | UnsetType | None = UNSET
    email: str | UnsetType | None = UNSET
    models: list[str] | UnsetType | None = UNSET
    rpm: Count | UnsetType | None = UNSET
    tpm: Count | UnsetType | None = UNSET
    max_parallel: Count | UnsetType | None = UNSET
    budget_usd: Usd | UnsetType | None = UNSET
    metadata: dict[str, Any] | UnsetType = UNSET


class TenantOut(msgspec.Struct, kw_only=True):
    id: str
    kind: Literal["org", "team", "user"]
    name: str
    parent_id: str | None
    email: str | None
    models: list[str] | None
    rpm: int | None
    tpm: int | None
    max_parallel: int | None
    budget_usd: float | None
    metadata: dict[str, Any]
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
