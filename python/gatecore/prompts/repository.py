"""Reads and writes of the prompt tables (store migration 6); every write audited in its transaction.

Versions are immutable: a publish adds the next number. A new prompt's first version gets the label
`production`; later versions get no label until one is moved to them, so a rollback is moving a label
back. A label holds `{version: weight}` (one version with weight 1 when not split).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import orjson

from gatecore.errors import Conflict, NotFound, StoreUnavailable
from gatecore.identity.audit import AuditEntry, record
from gatecore.store.base import ConstraintViolation, Store, StoreError

PRODUCTION = "production"
MAX_LABELS = 100  # per prompt: each is read on every call's head


class PromptHead(msgspec.Struct, kw_only=True):
    """A prompt's row and its labels: what a call resolves a label with."""

    name: str
    team_id: str | None
    kind: str  # "template" | "chain"
    latest: int
    created_by: str
    created_at: float
    updated_at: float
    labels: dict[str, Label] = {}


class Label(msgspec.Struct, kw_only=True):
    versions: dict[int, float]
    sticky: str | None = None
    updated_at: float = 0.0


class VersionRow(msgspec.Struct, kw_only=True):
    version: int
    spec: str
    created_by: str
    created_at: float


_HEAD = "SELECT name, team_id, kind, latest, created_by, created_at, updated_at FROM prompts"


class PromptRepository:
    """Prompt state in a Store."""

    def __init__(self, store: Store):
        self.store = store

    async def publish(self, name: str, kind: str, team_id: str | None, spec: str, actor: str) -> int:
        """Add the next version of `name` (creating the prompt with label `production` on version 1);
        its number. 409 when the name belongs to another team or changes kind."""
        now = time.time()
        try:
            async with self.store.transaction() as tx:
                row = await tx.fetchone("SELECT team_id, kind, latest FROM prompts WHERE name = $1", name)
                if row is None:
                    version = 1
                    await tx.execute(
                        "INSERT INTO prompts (name, team_id, kind, latest, created_by, created_at, updated_at) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        name,
                        team_id,
                        kind,
                        version,
                        actor,
                        now,
                        now,
                    )
                else:
                    if row[0] != team_id:
                        raise Conflict(f"The prompt '{name}' belongs to another owner.", code="prompt_owner")
                    if row[1] != kind:
                        raise Conflict(f"The prompt '{name}' is a {row[1]}; a new version must be one too.")
                    version = int(row[2]) + 1
                    await tx.execute(
                        "UPDATE prompts SET latest = $1, updated_at = $2 WHERE name = $3", version, now, name
                    )
                await tx.execute(
                    "INSERT INTO prompt_versions (name, version, spec, created_by, created_at) "
                    "VALUES ($1, $2, $3, $4, $5)",
                    name,
                    version,
                    spec,
                    actor,
                    now,
                )
                if version == 1:
                    await _put_label(tx, name, PRODUCTION, {1: 1.0}, None, actor, now)
                await record(
                    tx, AuditEntry(actor, "publish", "prompt", name, {"version": version, "team_id": team_id})
                )
        except ConstraintViolation:
            raise Conflict(f"The prompt '{name}' was published concurrently; retry.") from None
        except StoreError as exc:
            raise StoreUnavailable(f"The store is unavailable: {exc}") from None
        return version

    async def set_label(
        self, name: str, label: str, versions: dict[int, float], sticky: str | None, actor: str
    ) -> None:
        """Point `label` at `versions` (each must exist; 404 otherwise)."""
        now = time.time()
        try:
            async with self.store.transaction() as tx:
                row = await tx.fetchone("SELECT latest FROM prompts WHERE name = $1", name)
                if row is None:
                    raise NotFound(f"No prompt '{name[:100]}'.", code="prompt_not_found")
                missing = [v for v in versions if not 1 <= v <= int(row[0])]
                if missing:
                    raise NotFound(
                        f"The prompt '{name}' has no version {missing[0]}.", code="version_not_found"
                    )
                before = await tx.fetchone(
                    "SELECT versions FROM prompt_labels WHERE name = $1 AND label = $2", name, label
                )
                if before is None:
                    count = await tx.fetchone("SELECT COUNT(*) FROM prompt_labels WHERE name = $1", name)
                    if count is not None and int(count[0]) >= MAX_LABELS:
                        raise Conflict(f"The prompt '{name}' has {MAX_LABELS} labels, the most it may have.")
                await tx.execute("DELETE FROM prompt_labels WHERE name = $1 AND label = $2", name, label)
                await _put_label(tx, name, label, versions, sticky, actor, now)
                await tx.execute("UPDATE prompts SET updated_at = $1 WHERE name = $2", now, name)
                detail = {
                    "label": label,
                    "versions": {str(k): w for k, w in versions.items()},
                    "before": orjson.loads(before[0]) if before else None,
                }
                await record(tx, AuditEntry(actor, "label", "prompt", name, detail))
        except StoreError as exc:
            raise StoreUnavailable(f"The store is unavailable: {exc}") from None

    async def head(self, name: str) -> PromptHead:
        """The prompt and its labels; 404 when there is none."""
        try:
            async with self.store.read_transaction() as tx:
                row = await tx.fetchone(_HEAD + " WHERE name = $1", name)
                if row is None:
                    raise NotFound(f"No prompt '{name[:100]}'.", code="prompt_not_found")
                labels = await tx.fetch(
                    "SELECT label, versions, sticky, updated_at FROM prompt_labels WHERE name = $1", name
                )
        except StoreError as exc:
            raise StoreUnavailable(f"The store is unavailable: {exc}") from None
        head = _head(row)
        head.labels = {
            r[0]: Label(
                versions={int(k): float(v) for k, v in orjson.loads(r[1]).items()},
                sticky=r[2],
                updated_at=r[3],
            )
            for r in labels
        }
        return head

    async def heads(self, team_id: str | None, all_teams: bool) -> list[PromptHead]:
        """Every prompt (`all_teams`), or those of `team_id`, by name."""
        try:
            if all_teams:
                rows = await self.store.fetch(_HEAD + " ORDER BY name")
            else:
                rows = await self.store.fetch(_HEAD + " WHERE team_id = $1 ORDER BY name", team_id)
        except StoreError as exc:
            raise StoreUnavailable(f"The store is unavailable: {exc}") from None
        return [_head(r) for r in rows]

    async def version(self, name: str, version: int) -> VersionRow:
        try:
            row = await self.store.fetchone(
                "SELECT version, spec, created_by, created_at FROM prompt_versions WHERE name = $1 AND version = $2",
                name,
                version,
            )
        except StoreError as exc:
            raise StoreUnavailable(f"The store is unavailable: {exc}") from None
        if row is None:
            raise NotFound(f"The prompt '{name[:100]}' has no version {version}.", code="version_not_found")
        return VersionRow(version=int(row[0]), spec=row[1], created_by=row[2], created_at=row[3])

    async def versions(self, name: str) -> list[VersionRow]:
        try:
            rows = await self.store.fetch(
                "SELECT version, spec, created_by, created_at FROM prompt_versions WHERE name = $1 ORDER BY version",
                name,
            )
        except StoreError as exc:
            raise StoreUnavailable(f"The store is unavailable: {exc}") from None
        return [VersionRow(version=int(r[0]), spec=r[1], created_by=r[2], created_at=r[3]) for r in rows]

    async def stats(self, name: str, since: float, until: float) -> list[tuple[Any, ...]]:
        """Per version: requests, errors, latency sum and max, TTFT sum and count, tokens, cost."""
        try:
            return await self.store.fetch(
                "SELECT prompt_version, COUNT(*), "
                "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), "
                "SUM(latency_ms), MAX(latency_ms), SUM(ttft_ms), COUNT(ttft_ms), "
                "SUM(input_tokens), SUM(output_tokens), SUM(cost_usd) "
                "FROM usage_ledger WHERE prompt_name = $1 AND at >= $2 AND at < $3 "
                "GROUP BY prompt_version ORDER BY prompt_version",
                name,
                since,
                until,
            )
        except StoreError as exc:
            raise StoreUnavailable(f"The store is unavailable: {exc}") from None


async def _put_label(
    tx: Any, name: str, label: str, versions: dict[int, float], sticky: str | None, actor: str, now: float
) -> None:
    await tx.execute(
        "INSERT INTO prompt_labels (name, label, versions, sticky, updated_by, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        name,
        label,
        orjson.dumps({str(k): v for k, v in versions.items()}).decode(),
        sticky,
        actor,
        now,
    )


def _head(row: tuple[Any, ...]) -> PromptHead:
    return PromptHead(
        name=row[0],
        team_id=row[1],
        kind=row[2],
        latest=int(row[3]),
        created_by=row[4],
        created_at=row[5],
        updated_at=row[6],
    )
