"""The identity records as the store holds them (msgspec Structs, one per table row)."""

from __future__ import annotations

import os
from typing import Any, Final

import msgspec
import orjson

ORG: Final = "org"
TEAM: Final = "team"
USER: Final = "user"
TENANT_KINDS = (ORG, TEAM, USER)
# The level above each tenant kind (None: the top).
PARENT_KIND: dict[str, str | None] = {ORG: None, TEAM: ORG, USER: TEAM}

ROLES = ("admin", "team_admin", "viewer")


def new_id(kind: str) -> str:
    """A fresh record id: its kind and 16 hex digits (`key_3f9c…`)."""
    return f"{kind}_{os.urandom(8).hex()}"


class Tenant(msgspec.Struct, kw_only=True):
    """An organization, team or user: allowed models and limits, under a parent of the level above."""

    id: str
    kind: str
    name: str
    parent_id: str | None = None
    email: str | None = None
    models: list[str] | None = None  # None: every model the parent allows
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    budget_usd: float | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0


TENANT_COLUMNS = (
    "id, kind, name, parent_id, email, models, rpm, tpm, max_parallel, budget_usd, metadata, "
    "created_at, updated_at"
)


def tenant_from_row(row: tuple[Any, ...]) -> Tenant:
    (id_, kind, name, parent_id, email, models, rpm, tpm, parallel, budget, metadata, created, updated) = row
    return Tenant(
        id=id_,
        kind=kind,
        name=name,
        parent_id=parent_id,
        email=email,
        models=_json_or_none(models),
        rpm=rpm,
        tpm=tpm,
        max_parallel=parallel,
        budget_usd=budget,
        metadata=orjson.loads(metadata),
        created_at=created,
        updated_at=updated,
    )


class ApiKey(msgspec.Struct, kw_only=True):
    """A virtual API key. Only the keyed hash of its secret is kept; `prefix` is safe to show."""

    id: str
    name: str
    prefix: str
    hash: str
    previous_hash: str | None = None  # the secret before the last rotation, valid until below
    previous_valid_until: float | None = None
    team_id: str | None = None
    user_id: str | None = None
    role: str | None = None  # None: inference only
    models: list[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    budget_usd: float | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    tags: list[str] = msgspec.field(default_factory=list)
    expires_at: float | None = None
    revoked_at: float | None = None
    created_by: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0


KEY_COLUMNS = (
    "id, name, prefix, hash, previous_hash, previous_valid_until, team_id, user_id, role, models, rpm, "
    "tpm, max_parallel, budget_usd, metadata, tags, expires_at, revoked_at, created_by, created_at, "
    "updated_at"
)


def key_from_row(row: tuple[Any, ...]) -> ApiKey:
    (
        id_,
        name,
        prefix,
        hash_,
        previous_hash,
        previous_until,
        team_id,
        user_id,
        role,
        models,
        rpm,
        tpm,
        parallel,
        budget,
        metadata,
        tags,
        expires_at,
        revoked_at,
        created_by,
        created_at,
        updated_at,
    ) = row
    return ApiKey(
        id=id_,
        name=name,
        prefix=prefix,
        hash=hash_,
        previous_hash=previous_hash,
        previous_valid_until=previous_until,
        team_id=team_id,
        user_id=user_id,
        role=role,
        models=_json_or_none(models),
        rpm=rpm,
        tpm=tpm,
        max_parallel=parallel,
        budget_usd=budget,
        metadata=orjson.loads(metadata),
        tags=orjson.loads(tags),
        expires_at=expires_at,
        revoked_at=revoked_at,
        created_by=created_by,
        created_at=created_at,
        updated_at=updated_at,
    )


def _json_or_none(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


def json_or_none(value: Any) -> str | None:
    """A JSON column's value (None stays NULL)."""
    return None if value is None else orjson.dumps(value).decode()


def tenant_values(t: Tenant) -> tuple[Any, ...]:
    """The row of a tenant, in TENANT_COLUMNS order."""
    return (
        t.id,
        t.kind,
        t.name,
        t.parent_id,
        t.email,
        json_or_none(t.models),
        t.rpm,
        t.tpm,
        t.max_parallel,
        None if t.budget_usd is None else float(t.budget_usd),
        orjson.dumps(t.metadata).decode(),
        t.created_at,
        t.updated_at,
    )


def key_values(k: ApiKey) -> tuple[Any, ...]:
    """The row of a key, in KEY_COLUMNS order."""
    return (
        k.id,
        k.name,
        k.prefix,
        k.hash,
        k.previous_hash,
        k.previous_valid_until,
        k.team_id,
        k.user_id,
        k.role,
        json_or_none(k.models),
        k.rpm,
        k.tpm,
        k.max_parallel,
        None if k.budget_usd is None else float(k.budget_usd),
        orjson.dumps(k.metadata).decode(),
        orjson.dumps(k.tags).decode(),
        k.expires_at,
        k.revoked_at,
        k.created_by,
        k.created_at,
        k.updated_at,
    )
