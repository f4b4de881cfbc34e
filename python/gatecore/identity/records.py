"""The identity records as the store holds them (msgspec Structs, one per table row)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Final, TypeVar

import orjson

from gatecore.policy.fields import KeyPolicyFields, PolicyFields

ORG: Final = "org"
TEAM: Final = "team"
USER: Final = "user"
TENANT_KINDS = (ORG, TEAM, USER)
# The level above each tenant kind (None: the top).
PARENT_KIND: dict[str, str | None] = {ORG: None, TEAM: ORG, USER: TEAM}

ROLES = ("admin", "team_admin", "viewer")
ADMIN_ROLE: Final = "admin"


def new_id(kind: str) -> str:
    """A fresh record id: its kind and 16 hex digits (`key_3f9c…`)."""
    return f"{kind}_{os.urandom(8).hex()}"


class Tenant(PolicyFields, kw_only=True):
    """An organization, team or user: allowed models and limits, under a parent of the level above."""

    id: str
    kind: str
    name: str
    parent_id: str | None = None
    email: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


class ApiKey(KeyPolicyFields, kw_only=True):
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
    expires_at: float | None = None
    revoked_at: float | None = None
    created_by: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0


# A record's fields are its table's columns, by name and in this order (so a policy field added to
# PolicyFields is read and written once its migration adds the column). These hold JSON text:
_JSON_COLUMNS = frozenset({"models", "metadata", "tags"})
TENANT_COLUMNS = ", ".join(Tenant.__struct_fields__)
KEY_COLUMNS = ", ".join(ApiKey.__struct_fields__)

R = TypeVar("R", Tenant, ApiKey)


def _row_reader(record: type[R]) -> Callable[[tuple[Any, ...]], R]:
    # The JSON positions found once: a reload reads every key row (compile_keys), so this stays lean.
    names = record.__struct_fields__
    json_at = tuple(i for i, name in enumerate(names) if name in _JSON_COLUMNS)

    def read(row: tuple[Any, ...]) -> R:
        values = list(row)
        for i in json_at:
            if values[i] is not None:
                values[i] = orjson.loads(values[i])
        return record(**dict(zip(names, values, strict=True)))

    return read


tenant_from_row = _row_reader(Tenant)  # a tenant from its row, in TENANT_COLUMNS order
key_from_row = _row_reader(ApiKey)  # a key from its row, in KEY_COLUMNS order


def json_or_none(value: Any) -> str | None:
    """A JSON column's value (None stays NULL)."""
    return None if value is None else orjson.dumps(value).decode()


def _column_value(name: str, value: Any) -> Any:
    if name in _JSON_COLUMNS:
        return json_or_none(value)
    if name == "budget_usd" and value is not None:
        return float(value)  # an int from a JSON body is stored as the REAL it is
    return value


def row_values(record: Tenant | ApiKey, columns: tuple[str, ...] | None = None) -> tuple[Any, ...]:
    """The row of a record: every column (TENANT_COLUMNS or KEY_COLUMNS order), or only `columns`."""
    names = record.__struct_fields__ if columns is None else columns
    return tuple(_column_value(name, getattr(record, name)) for name in names)


def insert_statement(table: str, record: type[Tenant | ApiKey]) -> str:
    """`INSERT INTO table (…) VALUES ($1, …)` of every column: pass `row_values(record)`."""
    fields = record.__struct_fields__
    placeholders = ", ".join(f"${i}" for i in range(1, len(fields) + 1))
    return f"INSERT INTO {table} ({', '.join(fields)}) VALUES ({placeholders})"


def update_statement(
    table: str, record: type[Tenant | ApiKey], fixed: tuple[str, ...]
) -> tuple[str, tuple[str, ...]]:
    """`UPDATE table SET … WHERE id = $1` of every column but `id` and `fixed`, and those columns in
    parameter order ($2 onwards): pass `row_values(record, columns)` after the id."""
    columns = tuple(n for n in record.__struct_fields__ if n != "id" and n not in fixed)
    sets = ", ".join(f"{name}=${i}" for i, name in enumerate(columns, start=2))
    return f"UPDATE {table} SET {sets} WHERE id = $1", columns
