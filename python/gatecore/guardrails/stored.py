"""Guard definitions held in the store (`guardrail_defs`, migration 13), written through the admin API.

Each write bumps the identity change counter in its transaction (as key and tenant writes do), so
every worker's identity poll (identity/sync.py) sees it and reloads; `StoredGuardrails.reload` is one
of the poll's followers and installs the definitions in the worker's `guard_input` stage. A guard
whose definition did not change is not compiled again. A definition with `team_id` set is attachable
to that team's keys only (guardrails/stage.py refuses it on any other key's request).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgspec

from gatecore.config.guardrails import GuardrailConfig
from gatecore.errors import Conflict, NotFound, StoreUnavailable
from gatecore.guardrails.stage import GuardInput
from gatecore.identity.audit import AuditEntry, record
from gatecore.store.base import ConstraintViolation, Store, StoreError, Transaction

log = logging.getLogger("gatecore.guardrails")

# Stored definitions at most, in all and per team: each is compiled in every worker.
MAX_STORED = 500
MAX_PER_TEAM = 50
_COLUMNS = "name, team_id, spec, created_by, created_at, updated_by, updated_at"
# What the audit log keeps of a definition: what it is and whom it reaches, never a key or header.
_AUDITED = ("kind", "default", "apply_to", "action", "reroute_to")


class StoredGuard(msgspec.Struct, frozen=True):
    """One stored definition, as read."""

    config: GuardrailConfig
    team_id: str | None
    created_by: str
    created_at: float
    updated_by: str
    updated_at: float


class GuardrailRepository:
    """Reads and audited writes of `guardrail_defs`."""

    def __init__(self, store: Store):
        self.store = store

    async def all(self) -> list[StoredGuard]:
        try:
            rows = await self.store.fetch(f"SELECT {_COLUMNS} FROM guardrail_defs ORDER BY name")
        except StoreError as exc:
            raise StoreUnavailable(f"The store is unavailable: {exc}") from None
        found = []
        for row in rows:
            try:
                config = msgspec.json.decode(row[2], type=GuardrailConfig)
            except msgspec.DecodeError:  # written by a later version: skipped, not fatal
                log.warning("stored guardrail '%s' cannot be read by this version; skipped", row[0])
                continue
            found.append(StoredGuard(config, row[1], row[3], float(row[4]), row[5], float(row[6])))
        return found

    async def create(self, config: GuardrailConfig, team_id: str | None, actor: str) -> None:
        now = time.time()
        async with self._write() as tx:
            total = await tx.fetchone("SELECT COUNT(*) FROM guardrail_defs")
            mine = await tx.fetchone("SELECT COUNT(*) FROM guardrail_defs WHERE team_id = $1", team_id)
            if (total is not None and int(total[0]) >= MAX_STORED) or (
                team_id is not None and mine is not None and int(mine[0]) >= MAX_PER_TEAM
            ):
                raise Conflict(
                    f"Too many stored guardrails (at most {MAX_STORED}, {MAX_PER_TEAM} per team).",
                    code="guardrail_limit",
                )
            await tx.execute(
                f"INSERT INTO guardrail_defs ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                config.name,
                team_id,
                msgspec.json.encode(config).decode(),
                actor,
                now,
                actor,
                now,
            )
            await record(tx, _entry(actor, "guardrail.create", config, team_id))

    async def update(self, config: GuardrailConfig, team_id: str | None, actor: str) -> None:
        async with self._write() as tx:
            changed = await tx.execute(
                "UPDATE guardrail_defs SET spec = $2, updated_by = $3, updated_at = $4 WHERE name = $1",
                config.name,
                msgspec.json.encode(config).decode(),
                actor,
                time.time(),
            )
            if not changed:
                raise NotFound(f"No stored guardrail '{config.name[:100]}'.", code="guardrail_not_found")
            await record(tx, _entry(actor, "guardrail.update", config, team_id))

    async def delete(self, name: str, actor: str) -> None:
        """Delete one; 409 while a key or a tenant still names it in `metadata.guardrails` (its
        requests would be refused: a named guard that is gone fails closed)."""
        async with self._write() as tx:
            for table in ("api_keys", "tenants"):
                rows = await tx.fetch(f"SELECT metadata FROM {table} WHERE metadata LIKE $1", f"%{name}%")
                if any(name in _attached(row[0]) for row in rows):
                    raise Conflict(
                        f"Guardrail '{name[:100]}' is still attached ({table[:-1].replace('api_', '')} "
                        "metadata.guardrails); detach it first.",
                        code="guardrail_in_use",
                    )
            changed = await tx.execute("DELETE FROM guardrail_defs WHERE name = $1", name)
            if not changed:
                raise NotFound(f"No stored guardrail '{name[:100]}'.", code="guardrail_not_found")
            await record(tx, AuditEntry(actor, "guardrail.delete", "guardrail", name, {}))

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Transaction]:
        try:
            async with self.store.transaction() as tx:
                yield tx
                await tx.execute("UPDATE change_counter SET version = version + 1 WHERE id = 1")
        except ConstraintViolation:
            raise Conflict("A guardrail of that name already exists.", code="guardrail_exists") from None
        except StoreError as exc:
            raise StoreUnavailable(f"The store is unavailable: {exc}") from None


def _entry(actor: str, action: str, config: GuardrailConfig, team_id: str | None) -> AuditEntry:
    detail: dict[str, Any] = {k: getattr(config, k) for k in _AUDITED}
    detail["team_id"] = team_id
    return AuditEntry(actor, action, "guardrail", config.name, detail)


def _attached(metadata: Any) -> list[str]:
    try:
        doc = msgspec.json.decode(metadata) if isinstance(metadata, str | bytes) else metadata
    except msgspec.DecodeError:
        return []
    names = doc.get("guardrails") if isinstance(doc, dict) else None
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


class StoredGuardrails:
    """The worker's view of the stored definitions: loaded into its `guard_input` stage on every
    identity reload, and at once after this worker's own admin writes."""

    def __init__(
        self,
        repository: GuardrailRepository,
        stage: GuardInput,
        pii_changed: Callable[[list[GuardrailConfig]], None] | None = None,
    ):
        self.repository = repository
        self.stage = stage
        self.held: list[StoredGuard] = []
        # Told the stored PII definitions whenever they change (the body log's redactor follows).
        self.pii_changed = pii_changed
        self._pii: list[GuardrailConfig] = []

    async def owners(self) -> dict[str, str]:
        """The stored guards a team owns (name → team id), as the store holds them now."""
        return {g.config.name: g.team_id for g in await self.repository.all() if g.team_id is not None}

    async def reload(self) -> None:
        """Read every stored definition and install them (raises StoreUnavailable)."""
        self.held = await self.repository.all()
        self.stage.install([(g.config, g.team_id, g.updated_at) for g in self.held])
        pii = [g.config for g in self.held if g.config.kind == "pii"]
        if pii != self._pii:
            self._pii = pii
            if self.pii_changed is not None:
                self.pii_changed(pii)
