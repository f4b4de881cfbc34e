"""Reads and writes of the identity tables, each write audited and counted in one transaction.

Rules of the data live here, so the admin API and the CLI cannot drift apart: a level may only narrow
what the level above allows (models, limits), names are unique per kind, a tenant still referenced
cannot be deleted, and a key's secret is returned once and stored only as its keyed hash.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import orjson

from gatecore.errors import Conflict, NotFound, StoreUnavailable, Unprocessable
from gatecore.identity.audit import AuditEntry, record, shown_key, shown_tenant, without_secrets
from gatecore.identity.records import (
    ADMIN_ROLE,
    KEY_COLUMNS,
    PARENT_KIND,
    TEAM,
    TENANT_COLUMNS,
    USER,
    ApiKey,
    Tenant,
    insert_statement,
    key_from_row,
    new_id,
    row_values,
    tenant_from_row,
    update_statement,
)
from gatecore.identity.rules import check_narrows
from gatecore.identity.secrets import KeyHasher, new_key_secret, visible_prefix
from gatecore.policy.fields import PolicyFields
from gatecore.store.base import ConstraintViolation, Row, Store, StoreError, Transaction, ValueOutOfRange

T = TypeVar("T")

_INSERT_TENANT = insert_statement("tenants", Tenant)
_INSERT_KEY = insert_statement("api_keys", ApiKey)
# What an update rewrites: every column but the id and these.
_UPDATE_TENANT, _TENANT_UPDATED = update_statement("tenants", Tenant, fixed=("kind", "created_at"))
_UPDATE_KEY, _KEY_UPDATED = update_statement("api_keys", ApiKey, fixed=("created_by", "created_at"))
# What update_tenant may change (id, kind and times are the repository's).
_TENANT_CHANGES = frozenset(("name", "parent_id", "email", *PolicyFields.__struct_fields__))


class IdentityRepository:
    """Identity state in a Store."""

    def __init__(self, store: Store, hasher: KeyHasher | None):
        self.store = store
        self.hasher = hasher

    # -- reads ---------------------------------------------------------------------------------------

    async def version(self) -> int:
        row = await _read(self.store.fetchone("SELECT version FROM change_counter WHERE id = 1"))
        return int(row[0]) if row else 0

    async def load(self) -> tuple[int, list[Tenant], list[Row]]:
        """Everything the key snapshot is built from, read in one consistent transaction (key rows
        are left raw: the snapshot converts them in chunks)."""
        try:
            async with self.store.read_transaction() as tx:
                row = await tx.fetchone("SELECT version FROM change_counter WHERE id = 1")
                tenants = await tx.fetch(f"SELECT {TENANT_COLUMNS} FROM tenants")
                keys = await tx.fetch(f"SELECT {KEY_COLUMNS} FROM api_keys")
        except StoreError as exc:
            raise StoreUnavailable(f"The store is unavailable: {exc}") from None
        version = int(row[0]) if row else 0
        return version, [tenant_from_row(r) for r in tenants], keys

    async def key_with_owners(self, column: str, value: str) -> tuple[list[Tenant], list[Row]]:
        """One key's raw row (by `hash` or `id`, both unique) and the tenants it belongs to (its user,
        team and org), read in one transaction: what the snapshot compiles one key's entries from.
        Empty lists when there is no such key. Two indexed reads plus one per owner level."""
        if column not in ("hash", "id"):
            raise ValueError(f"keys are looked up by hash or id, not {column}")
        try:
            async with self.store.read_transaction() as tx:
                row = await tx.fetchone(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE {column} = $1", value)
                if row is None:
                    return [], []
                key = key_from_row(row)
                tenants: list[Tenant] = []
                pending = [key.user_id, key.team_id]
                while pending:
                    tenant_id = pending.pop()
                    if tenant_id is None or any(t.id == tenant_id for t in tenants):
                        continue
                    found = await tx.fetchone(
                        f"SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1", tenant_id
                    )
                    if found is not None:
                        tenant = tenant_from_row(found)
                        tenants.append(tenant)
                        pending.append(tenant.parent_id)  # a user's team, a team's org
        except StoreError as exc:
            raise StoreUnavailable(f"The store is unavailable: {exc}") from None
        return tenants, [row]

    async def tenant(self, kind: str, ref: str) -> Tenant:
        """A tenant by id or by name; 404 when there is none."""
        row = await _read(
            self.store.fetchone(
                f"SELECT {TENANT_COLUMNS} FROM tenants WHERE kind = $1 AND (id = $2 OR name = $2)", kind, ref
            )
        )
        if row is None:
            raise NotFound(f"No {kind} '{ref[:100]}'.", code=f"{kind}_not_found")
        return tenant_from_row(row)

    async def tenants(self, kind: str, parent_id: str | None = None) -> list[Tenant]:
        if parent_id is None:
            rows = await _read(
                self.store.fetch(f"SELECT {TENANT_COLUMNS} FROM tenants WHERE kind = $1 ORDER BY name", kind)
            )
        else:
            rows = await _read(
                self.store.fetch(
                    f"SELECT {TENANT_COLUMNS} FROM tenants WHERE kind = $1 AND parent_id = $2 ORDER BY name",
                    kind,
                    parent_id,
                )
            )
        return [tenant_from_row(r) for r in rows]

    async def key(self, key_id: str) -> ApiKey:
        row = await _read(self.store.fetchone(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1", key_id))
        if row is None:
            raise NotFound(f"No key '{key_id[:100]}'.", code="key_not_found")
        return key_from_row(row)

    async def keys(self, team_id: str | None = None) -> list[ApiKey]:
        if team_id is None:
            rows = await _read(self.store.fetch(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at"))
        else:
            rows = await _read(
                self.store.fetch(
                    f"SELECT {KEY_COLUMNS} FROM api_keys WHERE team_id = $1 ORDER BY created_at", team_id
                )
            )
        return [key_from_row(r) for r in rows]

    async def record_action(
        self, actor: str, action: str, target_type: str, target_id: str, detail: dict[str, Any]
    ) -> None:
        """An audit entry for an action on something else than an identity record (a config reload);
        no change counter bump: the key table did not change."""
        try:
            async with self.store.transaction() as tx:
                await record(tx, AuditEntry(actor, action, target_type, target_id, detail))
        except StoreError as error:
            raise StoreUnavailable(f"The store is unavailable: {error}") from None

    async def audit(self, limit: int, target_id: str | None = None) -> list[dict[str, Any]]:
        columns = "id, at, actor, action, target_type, target_id, detail"
        if target_id is None:
            rows = await _read(
                self.store.fetch(f"SELECT {columns} FROM audit_log ORDER BY at DESC, id LIMIT $1", limit)
            )
        else:
            rows = await _read(
                self.store.fetch(
                    f"SELECT {columns} FROM audit_log WHERE target_id = $1 ORDER BY at DESC, id LIMIT $2",
                    target_id,
                    limit,
                )
            )
        return [
            {
                "id": r[0],
                "at": r[1],
                "actor": r[2],
                "action": r[3],
                "target_type": r[4],
                "target_id": r[5],
                "detail": orjson.loads(r[6]),
            }
            for r in rows
        ]

    # -- tenants -------------------------------------------------------------------------------------

    async def create_tenant(self, tenant: Tenant, actor: str) -> Tenant:
        """Insert a new org, team or user (its id and times are set here)."""
        tenant.id = new_id(tenant.kind)
        tenant.created_at = tenant.updated_at = time.time()
        async with self._write() as tx:
            parent = await self._parent_of(tx, tenant)
            check_narrows(tenant, parent, tenant.kind)
            await tx.execute(_INSERT_TENANT, *row_values(tenant))
            await record(
                tx, AuditEntry(actor, f"{tenant.kind}.create", tenant.kind, tenant.id, shown_tenant(tenant))
            )
        return tenant

    async def update_tenant(self, kind: str, ref: str, changes: dict[str, Any], actor: str) -> Tenant:
        async with self._write() as tx:
            row = await tx.fetchone(
                f"SELECT {TENANT_COLUMNS} FROM tenants WHERE kind = $1 AND (id = $2 OR name = $2)", kind, ref
            )
            if row is None:
                raise NotFound(f"No {kind} '{ref[:100]}'.", code=f"{kind}_not_found")
            tenant = tenant_from_row(row)
            for name, value in changes.items():
                if name not in _TENANT_CHANGES:
                    # A caller's mistake, not a crash: only these columns may change.
                    raise Unprocessable(f"A {kind} has no '{name}' field.", param=name)
                setattr(tenant, name, value)
            tenant.updated_at = time.time()
            parent = await self._parent_of(tx, tenant)
            check_narrows(tenant, parent, kind)
            await tx.execute(_UPDATE_TENANT, tenant.id, *row_values(tenant, _TENANT_UPDATED))
            await record(tx, AuditEntry(actor, f"{kind}.update", kind, tenant.id, without_secrets(changes)))
        return tenant

    async def delete_tenant(self, kind: str, ref: str, actor: str) -> None:
        async with self._write() as tx:
            row = await tx.fetchone(
                "SELECT id FROM tenants WHERE kind = $1 AND (id = $2 OR name = $2)", kind, ref
            )
            if row is None:
                raise NotFound(f"No {kind} '{ref[:100]}'.", code=f"{kind}_not_found")
            tenant_id = row[0]
            used = await tx.fetchone(
                "SELECT (SELECT COUNT(*) FROM tenants WHERE parent_id = $1) + "
                "(SELECT COUNT(*) FROM api_keys WHERE team_id = $1 OR user_id = $1)",
                tenant_id,
            )
            if used and used[0]:
                raise Conflict(
                    f"The {kind} '{ref[:100]}' still has members or keys; remove or move them first.",
                    code="tenant_in_use",
                )
            await tx.execute("DELETE FROM tenants WHERE id = $1", tenant_id)
            await record(tx, AuditEntry(actor, f"{kind}.delete", kind, tenant_id, {}))

    # -- keys ----------------------------------------------------------------------------------------

    async def create_key(
        self, key: ApiKey, actor: str, check: Callable[[ApiKey], None] | None = None
    ) -> tuple[ApiKey, str]:
        """Insert a new key; returns it and its secret (the only time the secret exists).

        `check` sees the key with its owners resolved, before the write, and may refuse it by raising.
        """
        hasher = self._require_hasher()
        secret = new_key_secret()
        key.id = new_id("key")
        key.prefix = visible_prefix(secret)
        key.hash = hasher.hexdigest(secret)
        key.created_by = actor
        key.created_at = key.updated_at = time.time()
        async with self._write() as tx:
            await self._resolve_key_owner(tx, key)
            if check is not None:
                check(key)
            await tx.execute(_INSERT_KEY, *row_values(key))
            await record(tx, AuditEntry(actor, "key.create", "key", key.id, shown_key(key)))
        return key, secret

    async def update_key(
        self, key_id: str, changes: dict[str, Any], actor: str, check: Callable[[ApiKey], None] | None = None
    ) -> ApiKey:
        """Apply `changes` to a key. `check` sees the key as stored and then as it would be written
        (owners resolved), inside the write transaction, and may refuse either by raising: what the
        caller may touch is judged on the row that is changed, not on an earlier read."""
        async with self._write() as tx:
            key = await _locked_key(tx, key_id)
            if check is not None:
                check(key)
            for name, value in changes.items():
                setattr(key, name, value)
            key.updated_at = time.time()
            await self._resolve_key_owner(tx, key)
            if check is not None:
                check(key)
            await _store_key(tx, key)
            await record(tx, AuditEntry(actor, "key.update", "key", key.id, without_secrets(changes)))
        return key

    async def rotate_key(
        self, key_id: str, grace_s: float, actor: str, check: Callable[[ApiKey], None] | None = None
    ) -> tuple[ApiKey, str]:
        """A new secret for the key; the old one keeps working for `grace_s` seconds. `check` sees
        the stored key inside the transaction and may refuse it by raising."""
        hasher = self._require_hasher()
        secret = new_key_secret()
        async with self._write() as tx:
            key = await _locked_key(tx, key_id)
            if check is not None:
                check(key)
            if key.revoked_at is not None:
                raise Conflict("A revoked key cannot be rotated.", code="key_revoked")
            now = time.time()
            key.previous_hash, key.previous_valid_until = key.hash, now + grace_s
            key.hash = hasher.hexdigest(secret)
            key.prefix = visible_prefix(secret)
            key.updated_at = now
            await _store_key(tx, key)
            await record(tx, AuditEntry(actor, "key.rotate", "key", key.id, {"grace_s": grace_s}))
        return key, secret

    async def revoke_key(
        self, key_id: str, actor: str, check: Callable[[ApiKey], None] | None = None
    ) -> ApiKey:
        """Revoke a key (at once; idempotent). `check` sees the stored key inside the transaction
        and may refuse it by raising."""
        async with self._write() as tx:
            key = await _locked_key(tx, key_id)
            if check is not None:
                check(key)
            if key.revoked_at is None:
                key.revoked_at = key.updated_at = time.time()
                key.previous_hash = key.previous_valid_until = None
                await _store_key(tx, key)
                await record(tx, AuditEntry(actor, "key.revoke", "key", key.id, {}))
        return key

    # -- internals -----------------------------------------------------------------------------------

    def _require_hasher(self) -> KeyHasher:
        if self.hasher is None:
            raise Unprocessable(
                "Virtual keys need a server secret: set auth.key_hash_secret (or auth.master_key).",
                code="no_key_secret",
            )
        return self.hasher

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Transaction]:
        """A write transaction that bumps the change counter with the change, so workers that see
        the new counter also see the change."""
        try:
            async with self.store.transaction() as tx:
                yield tx
                await tx.execute("UPDATE change_counter SET version = version + 1 WHERE id = 1")
        except ConstraintViolation as error:
            raise Conflict(f"The change conflicts with existing data ({_constraint(error)}).") from None
        except ValueOutOfRange:
            raise Unprocessable("A value is out of the range the store can hold.") from None
        except StoreError as error:
            raise StoreUnavailable(f"The store is unavailable: {error}") from None

    async def _parent_of(self, tx: Transaction, tenant: Tenant) -> Tenant | None:
        parent_kind = PARENT_KIND[tenant.kind]
        if tenant.parent_id is None or parent_kind is None:
            if tenant.parent_id is not None:
                raise Unprocessable(f"A {tenant.kind} has no parent level.", param="parent")
            return None
        row = await tx.fetchone(
            f"SELECT {TENANT_COLUMNS} FROM tenants WHERE kind = $1 AND (id = $2 OR name = $2)",
            parent_kind,
            tenant.parent_id,
        )
        if row is None:
            raise Unprocessable(f"Unknown {parent_kind} '{tenant.parent_id[:100]}'.", param=parent_kind)
        parent = tenant_from_row(row)
        tenant.parent_id = parent.id
        return parent

    async def _resolve_key_owner(self, tx: Transaction, key: ApiKey) -> None:
        """Resolve team/user references (id or name) and check the key narrows its owner."""
        user = team = None
        if key.user_id is not None:
            user = await _tenant_in(tx, USER, key.user_id)
            key.user_id = user.id
            if key.team_id is None:
                key.team_id = user.parent_id
        if key.team_id is not None:
            team = await _tenant_in(tx, TEAM, key.team_id)
            key.team_id = team.id
            if user is not None and user.parent_id not in (None, team.id):
                raise Unprocessable("The key's user belongs to another team.", param="team")
        if key.role == ADMIN_ROLE and key.team_id is not None:
            # An admin key is global: a team on it would put it within a team_admin's reach
            # (issue 17: a team_admin rotated a team's admin key and took over the gateway).
            raise Unprocessable(
                "An admin key belongs to no team (nor to a user of a team); set team and user to null.",
                param="team" if key.user_id is None else "user",
                code="admin_key_with_team",
            )
        owner = user or team
        check_narrows(key, owner, "key")
        if owner is user and team is not None:
            check_narrows(key, team, "key")


async def _read(pending: Awaitable[T]) -> T:
    try:
        return await pending
    except StoreError as exc:
        raise StoreUnavailable(f"The store is unavailable: {exc}") from None


def _constraint(error: ConstraintViolation) -> str:
    text = str(error).lower()
    if "unique" in text or "duplicate" in text:
        return "the name is already taken"
    if "foreign key" in text:
        return "it refers to a record that does not exist"
    return "constraint violated"


async def _tenant_in(tx: Transaction, kind: str, ref: str) -> Tenant:
    row = await tx.fetchone(
        f"SELECT {TENANT_COLUMNS} FROM tenants WHERE kind = $1 AND (id = $2 OR name = $2)", kind, ref
    )
    if row is None:
        raise Unprocessable(f"Unknown {kind} '{ref[:100]}'.", param=kind, code=f"unknown_{kind}")
    return tenant_from_row(row)


async def _locked_key(tx: Transaction, key_id: str) -> ApiKey:
    row = await tx.fetchone(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1", key_id)
    if row is None:
        raise NotFound(f"No key '{key_id[:100]}'.", code="key_not_found")
    return key_from_row(row)


async def _store_key(tx: Transaction, key: ApiKey) -> None:
    await tx.execute(_UPDATE_KEY, key.id, *row_values(key, _KEY_UPDATED))
