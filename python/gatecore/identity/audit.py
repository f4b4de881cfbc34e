"""The audit log: who did what to which identity record, and when; never a secret or a hash."""

from __future__ import annotations

import time
from typing import Any

import orjson

from gatecore.identity.records import ApiKey, Tenant, new_id
from gatecore.store.base import Transaction


class AuditEntry:
    """Who did what to which record; `detail` never holds a secret or a hash."""

    __slots__ = ("action", "actor", "detail", "target_id", "target_type")

    def __init__(self, actor: str, action: str, target_type: str, target_id: str, detail: dict[str, Any]):
        self.actor = actor
        self.action = action
        self.target_type = target_type
        self.target_id = target_id
        self.detail = detail


_SECRET_FIELDS = frozenset({"hash", "previous_hash", "key"})


def without_secrets(changes: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in changes.items() if name not in _SECRET_FIELDS}


def shown_tenant(tenant: Tenant) -> dict[str, Any]:
    return {"name": tenant.name, "parent_id": tenant.parent_id, "models": tenant.models}


def shown_key(key: ApiKey) -> dict[str, Any]:
    return {
        "name": key.name,
        "prefix": key.prefix,
        "team_id": key.team_id,
        "user_id": key.user_id,
        "role": key.role,
        "models": key.models,
    }


async def record(tx: Transaction, entry: AuditEntry) -> None:
    await tx.execute(
        "INSERT INTO audit_log (id, at, actor, action, target_type, target_id, detail) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        new_id("audit"),
        time.time(),
        entry.actor,
        entry.action,
        entry.target_type,
        entry.target_id,
        orjson.dumps(entry.detail, default=str).decode(),
    )
