"""`/admin/v1/access-requests`: a developer asks for a key, a team_admin or admin decides (issue 22).

Any key may ask (an inference key too, or a console user signed in with one) and read its own
requests; an `admin` key (or a global viewer) sees every request, a key of a team its team's. An
admin approves or rejects any request, a team_admin those of its team. Approving creates a key for
the requester's team, limited to the requested models; its secret is kept sealed (AES-GCM, with a key
derived from the server's key-hashing secret) until the requester reads the request once, which
answers it as `key` and erases it: afterwards only `prefix`. Every decision is in the audit log.
"""

from __future__ import annotations

import datetime
import os
import time
from typing import Annotated, Any, Literal

import msgspec
import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from msgspec import UNSET, Meta, UnsetType

from gatecore.admin.access import ADMIN, TEAM_ADMIN, Caller, check_models
from gatecore.admin.convert import maybe_datetime, to_datetime, to_epoch
from gatecore.admin.wire import ListOf
from gatecore.errors import Conflict, Forbidden, NotFound, StoreUnavailable, Unprocessable
from gatecore.identity.audit import AuditEntry, record
from gatecore.identity.records import ApiKey, new_id
from gatecore.identity.repository import IdentityRepository
from gatecore.policy.fields import Count, Usd
from gatecore.store.base import Row, StoreError

MAX_REASON = 2000
MAX_LISTED = 500  # the newest requests a list shows
MAX_PENDING = 20  # open requests one requester may have
Item = Annotated[str, Meta(min_length=1, max_length=200)]
Reason = Annotated[str, Meta(min_length=1, max_length=MAX_REASON)]


class AccessRequestCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /admin/v1/access-requests`: the models and published prompts wanted, and why."""

    models: Annotated[list[Item], Meta(max_length=1000)] = msgspec.field(default_factory=list)
    prompts: Annotated[list[Item], Meta(max_length=100)] = msgspec.field(default_factory=list)
    reason: Reason


class AccessApprove(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /admin/v1/access-requests/{id}/approve`: the new key's limits (all optional)."""

    rpm: Count | None = None
    tpm: Count | None = None
    budget_usd: Usd | None = None
    expires_at: datetime.datetime | None = None


class AccessReject(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /admin/v1/access-requests/{id}/reject`."""

    reason: Reason | None = None


class AccessRequestOut(msgspec.Struct, kw_only=True):
    """A request as the API shows it. `key` is there once, for the requester, after approval."""

    id: str
    status: Literal["pending", "approved", "rejected"]
    requester: str
    requester_name: str
    team_id: str | None = None
    models: list[str] = msgspec.field(default_factory=list)
    prompts: list[str] = msgspec.field(default_factory=list)
    reason: str = ""
    created_at: datetime.datetime | None = None
    decided_by: str | None = None
    decided_at: datetime.datetime | None = None
    decision_reason: str | None = None
    key_id: str | None = None
    prefix: str | None = None
    key: str | UnsetType = UNSET


_COLUMNS = (
    "id, requester, requester_name, team_id, models, prompts, reason, status, decided_by, decided_at, "
    "decision_reason, key_id, key_prefix, sealed_key, created_at"
)
_NONCE = 12


class AccessRequestsApi:
    """The access-request endpoints over the store of `repository` (which also creates the keys)."""

    def __init__(self, repository: IdentityRepository, models: frozenset[str]):
        self.repository = repository
        self.store = repository.store
        self.models = models
        # The sealing key: the keyed hash of a fixed label, so it exists only where the server's
        # key-hashing secret does (None: keys cannot be created here at all).
        hasher = repository.hasher
        self._seal = AESGCM(hasher.digest("gatecore access-request key seal")) if hasher else None

    async def create(self, caller: Caller, body: AccessRequestCreate) -> AccessRequestOut:
        if not body.models and not body.prompts:
            # 422, not 400: the body is well-formed (each list may be empty), only not both.
            raise Unprocessable("Ask for at least one model or prompt.", param="models", code="nothing_asked")
        check_models(body.models, self.models)
        now = time.time()
        request_id = new_id("access")
        values = (
            request_id,
            caller.actor,
            caller.name[:200],
            caller.team_id,
            orjson.dumps(body.models).decode(),
            orjson.dumps(body.prompts).decode(),
            body.reason,
            "pending",
            now,
        )
        async with _write(self.store) as tx:
            pending = await tx.fetchone(
                "SELECT COUNT(*) FROM access_requests WHERE requester = $1 AND status = 'pending'",
                caller.actor,
            )
            if pending is not None and int(pending[0]) >= MAX_PENDING:
                # Any key may ask: its open requests are bounded, so the table cannot be flooded.
                raise Conflict(
                    f"This key already has {MAX_PENDING} pending access requests; wait for a decision.",
                    code="too_many_pending",
                )
            await tx.execute(
                "INSERT INTO access_requests (id, requester, requester_name, team_id, models, prompts, "
                "reason, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                *values,
            )
            detail = {"models": body.models, "prompts": body.prompts, "team_id": caller.team_id}
            await record(
                tx, AuditEntry(caller.actor, "access_request.create", "access_request", request_id, detail)
            )
        return AccessRequestOut(
            id=request_id,
            status="pending",
            requester=caller.actor,
            requester_name=caller.name[:200],
            team_id=caller.team_id,
            models=body.models,
            prompts=body.prompts,
            reason=body.reason,
            created_at=to_datetime(now),
        )

    async def index(self, caller: Caller) -> ListOf:
        """Newest first: every request for a global admin or viewer, a team's for a key of that team,
        a requester's own for a key without an admin role."""
        if caller.role is None:
            where, args = " WHERE requester = $1", [caller.actor]
        elif caller.scope is not None:
            where, args = " WHERE team_id = $1", [caller.scope]
        else:
            where, args = "", []
        rows = await _read(
            self.store.fetch(
                f"SELECT {_COLUMNS} FROM access_requests{where} ORDER BY created_at DESC LIMIT {MAX_LISTED}",
                *args,
            )
        )
        return ListOf([_out(row) for row in rows])

    async def get(self, caller: Caller, request_id: str) -> AccessRequestOut:
        """One request; its requester reads the approved key here, once."""
        row = await self._visible(caller, request_id)
        out = _out(row)
        if row[13] is not None and caller.actor == row[1]:
            # Erased in the same statement that checks it is still there: of two reads at once, one
            # gets the key.
            async with _write(self.store) as tx:
                taken = await tx.execute(
                    "UPDATE access_requests SET sealed_key = NULL WHERE id = $1 AND sealed_key IS NOT NULL",
                    request_id,
                )
            if taken == 1 and self._seal is not None:
                sealed = bytes.fromhex(row[13])
                out.key = self._seal.decrypt(sealed[:_NONCE], sealed[_NONCE:], request_id.encode()).decode()
        return out

    async def approve(self, caller: Caller, request_id: str, body: AccessApprove) -> AccessRequestOut:
        row = await self._decidable(caller, request_id)
        if self._seal is None:
            self.repository._require_hasher()  # the 422 that says what to configure
        assert self._seal is not None
        models = orjson.loads(row[4])
        prompts = orjson.loads(row[5])
        # Claimed first, so two approvals at once cannot both create a key.
        await self._claim(request_id, "approving")
        try:
            key = ApiKey(
                id="",
                name=f"access {request_id}"[:200],
                prefix="",
                hash="",
                team_id=row[3],
                user_id=None,
                role=None,
                # Exactly what was asked for: a request for prompts only gets no model of its own.
                models=models,
                rpm=body.rpm,
                tpm=body.tpm,
                budget_usd=body.budget_usd,
                metadata={"access_request": request_id, "prompts": prompts},
                expires_at=to_epoch(body.expires_at) if body.expires_at is not None else None,
                created_by="",
                created_at=0.0,
                updated_at=0.0,
            )
            key, secret = await self.repository.create_key(key, caller.actor)
        except BaseException:
            await self._claim(request_id, "pending", "approving")
            raise
        nonce = os.urandom(_NONCE)
        sealed = (nonce + self._seal.encrypt(nonce, secret.encode(), request_id.encode())).hex()
        now = time.time()
        async with _write(self.store) as tx:
            await tx.execute(
                "UPDATE access_requests SET status = 'approved', decided_by = $2, decided_at = $3, "
                "key_id = $4, key_prefix = $5, sealed_key = $6 WHERE id = $1",
                request_id,
                caller.actor,
                now,
                key.id,
                key.prefix,
                sealed,
            )
            detail = {"key_id": key.id, "models": models, "prompts": prompts}
            await record(
                tx, AuditEntry(caller.actor, "access_request.approve", "access_request", request_id, detail)
            )
        return _out(await self._row(request_id))

    async def reject(self, caller: Caller, request_id: str, body: AccessReject) -> AccessRequestOut:
        await self._decidable(caller, request_id)
        async with _write(self.store) as tx:
            changed = await tx.execute(
                "UPDATE access_requests SET status = 'rejected', decided_by = $2, decided_at = $3, "
                "decision_reason = $4 WHERE id = $1 AND status = 'pending'",
                request_id,
                caller.actor,
                time.time(),
                body.reason,
            )
            if changed != 1:
                raise Conflict("This access request was already decided.", code="already_decided")
            detail = {"reason": body.reason}
            await record(
                tx, AuditEntry(caller.actor, "access_request.reject", "access_request", request_id, detail)
            )
        return _out(await self._row(request_id))

    # -- internals -----------------------------------------------------------------------------------

    async def _row(self, request_id: str) -> Row:
        row = await _read(
            self.store.fetchone(f"SELECT {_COLUMNS} FROM access_requests WHERE id = $1", request_id)
        )
        if row is None:
            raise NotFound(f"No access request '{request_id[:200]}'.")
        found: Row = row
        return found

    async def _visible(self, caller: Caller, request_id: str) -> Row:
        """The row, if the caller may see it (404 otherwise: another team's ids stay unknown)."""
        row = await self._row(request_id)
        mine = row[1] == caller.actor
        if caller.role is None and not mine:
            raise NotFound(f"No access request '{request_id[:200]}'.")
        if caller.role is not None and not mine and caller.scope is not None and row[3] != caller.scope:
            raise NotFound(f"No access request '{request_id[:200]}'.")
        return row

    async def _decidable(self, caller: Caller, request_id: str) -> Row:
        if caller.role not in (ADMIN, TEAM_ADMIN):
            raise Forbidden("Deciding access requests needs the admin or team_admin role.")
        row = await self._visible(caller, request_id)
        caller.require_team(row[3])
        if row[7] != "pending":
            raise Conflict("This access request was already decided.", code="already_decided")
        return row

    async def _claim(self, request_id: str, status: str, expected: str = "pending") -> None:
        async with _write(self.store) as tx:
            changed = await tx.execute(
                "UPDATE access_requests SET status = $2 WHERE id = $1 AND status = $3",
                request_id,
                status,
                expected,
            )
        if changed != 1:
            raise Conflict("This access request was already decided.", code="already_decided")


def _out(row: Row) -> AccessRequestOut:
    status: Literal["pending", "approved", "rejected"] = "pending"  # "approving" shows as pending
    if row[7] == "approved":
        status = "approved"
    elif row[7] == "rejected":
        status = "rejected"
    return AccessRequestOut(
        id=row[0],
        status=status,
        requester=row[1],
        requester_name=row[2],
        team_id=row[3],
        models=orjson.loads(row[4]),
        prompts=orjson.loads(row[5]),
        reason=row[6],
        decided_by=row[8],
        decided_at=maybe_datetime(row[9]),
        decision_reason=row[10],
        key_id=row[11],
        prefix=row[12],
        created_at=to_datetime(row[14]),
    )


class _write:
    """A write transaction whose store errors answer 503 (a constraint cannot fail here)."""

    def __init__(self, store: Any):
        self._context = store.transaction()

    async def __aenter__(self) -> Any:
        try:
            return await self._context.__aenter__()
        except StoreError as error:
            raise StoreUnavailable(f"The store is unavailable: {error}") from None

    async def __aexit__(self, *exc: Any) -> bool | None:
        try:
            return bool(await self._context.__aexit__(*exc))
        except StoreError as error:
            raise StoreUnavailable(f"The store is unavailable: {error}") from None


async def _read(pending: Any) -> Any:
    try:
        return await pending
    except StoreError as error:
        raise StoreUnavailable(f"The store is unavailable: {error}") from None
