"""What a caller may do: the compiled policy of one key (or token), read by every stage."""

from __future__ import annotations

from typing import Any

from gatecore.run_id import valid_run_id

MASTER_ID = "master"


class Scope:
    """A tenant level a key belongs to (org, team or user) with its own limits, shared by its keys."""

    __slots__ = ("budget_usd", "id", "kind", "max_parallel", "name", "rpm", "tpm")

    def __init__(
        self,
        kind: str,
        id: str,
        name: str,
        rpm: int | None = None,
        tpm: int | None = None,
        max_parallel: int | None = None,
        budget_usd: float | None = None,
    ):
        self.kind = kind
        self.id = id
        self.name = name
        self.rpm = rpm
        self.tpm = tpm
        self.max_parallel = max_parallel
        self.budget_usd = budget_usd


MAX_ATTACHED_GUARDRAILS = 16


def guardrail_names(metadata: dict[str, Any]) -> tuple[str, ...]:
    """The `guardrails` of a key's or a tenant's metadata: names of configured guardrails (the admin
    API checks the shape; a name that is not configured refuses the request, guardrails/stage.py)."""
    names = metadata.get("guardrails")
    if not isinstance(names, list):
        return ()
    return tuple(n for n in names[:MAX_ATTACHED_GUARDRAILS] if isinstance(n, str))


class KeyPolicy:
    """One key's identity and rights. `models` is None when every model is allowed.

    `expires_at` and `revoked` are checked at lookup, so a snapshot stays valid as time passes.
    """

    __slots__ = (
        "budget_usd",
        "expires_at",
        "guardrails",
        "id",
        "log_bodies",
        "max_parallel",
        "metadata",
        "models",
        "name",
        "org",
        "prefix",
        "revoked",
        "role",
        "rpm",
        "run_id",
        "source",
        "tags",
        "team",
        "tpm",
        "user",
    )

    def __init__(
        self,
        id: str,
        name: str,
        prefix: str,
        models: frozenset[str] | None,
        *,
        source: str,
        role: str | None = None,
        team: Scope | None = None,
        user: Scope | None = None,
        org: Scope | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        max_parallel: int | None = None,
        budget_usd: float | None = None,
        metadata: dict[str, Any] | None = None,
        tags: tuple[str, ...] = (),
        expires_at: float | None = None,
        revoked: bool = False,
        log_bodies: bool = False,
        team_guardrails: tuple[str, ...] = (),
    ):
        self.id = id
        self.name = name
        self.prefix = prefix
        self.models = models
        self.source = source  # "master" | "config" | "store" | "jwt"
        self.role = role
        self.team = team
        self.user = user
        self.org = org
        self.rpm = rpm
        self.tpm = tpm
        self.max_parallel = max_parallel
        self.budget_usd = budget_usd
        self.metadata = metadata or {}
        # A benchmark run every request of this key belongs to (its `run_id` metadata, when valid),
        # unless the request names its own with `x-gatecore-run-id`.
        self.run_id = valid_run_id(self.metadata.get("run_id"))
        # `log_bodies: true` in the key's or its team's metadata: bodies go into the access log.
        self.log_bodies = log_bodies or self.metadata.get("log_bodies") is True
        # Guardrails (by name) this key's requests go through on top of the model's: its team's
        # `guardrails` metadata, then its own (guardrails/stage.py).
        self.guardrails = team_guardrails + guardrail_names(self.metadata)
        self.tags = tags
        self.expires_at = expires_at
        self.revoked = revoked

    def allows(self, model: str) -> bool:
        return self.models is None or model in self.models
