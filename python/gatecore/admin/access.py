"""Who may do what on the admin API.

`admin` (and the master key) may do everything; `viewer` may read; `team_admin` manages the keys of
its own team and reads its team and users; keys without a role (inference keys) get 403.

A key that belongs to a team sees that team only, whatever its role (issue 17): a team's viewer reads
that team's keys, users, usage and runs, not every team's. Only an `admin` key (which carries no team)
or the master key is global. A team_admin touches only keys whose role is at most its own, and grants
no role above `viewer`, so it can neither take over an admin key nor mint a key that sees more than
its team.
"""

from __future__ import annotations

from typing import Any

from gatecore.errors import Forbidden, Unprocessable
from gatecore.identity.records import ApiKey
from gatecore.policy.key_policy import MAX_ATTACHED_GUARDRAILS, KeyPolicy
from gatecore.run_id import valid_run_id

ADMIN, TEAM_ADMIN, VIEWER = "admin", "team_admin", "viewer"
# The roles of the keys a team_admin may act on, and the roles it may give a key.
MANAGED_BY_TEAM_ADMIN = (None, VIEWER, TEAM_ADMIN)
GRANTED_BY_TEAM_ADMIN = (None, VIEWER)


class Caller:
    """The authenticated caller of one admin request."""

    __slots__ = ("actor", "name", "role", "scope", "team_id")

    def __init__(self, policy: KeyPolicy, member: bool = False):
        # `member`: a key without an admin role is let in (role None), for the few routes any key
        # may call (asking for access, reading its own requests); the router says which.
        if policy.role not in (ADMIN, TEAM_ADMIN, VIEWER) and not (member and policy.role is None):
            raise Forbidden("This key has no admin role; use the master key or a key with an admin role.")
        self.role = policy.role
        self.actor = policy.id
        self.name = policy.name
        self.team_id = policy.team.id if policy.team is not None else None
        if self.role == TEAM_ADMIN and self.team_id is None:
            raise Forbidden("This team_admin key belongs to no team.")
        # The one team this caller may see, None for a global caller. An admin key is global even
        # if a row written before issue 17 gives it a team: its writes reach everything anyway.
        self.scope = None if self.role == ADMIN else self.team_id

    def require_admin(self) -> None:
        if self.role != ADMIN:
            raise Forbidden("This action needs the admin role.")

    def require_writer(self) -> None:
        if self.role is None:
            raise Forbidden("This action needs an admin or team_admin role.")
        if self.role == VIEWER:
            raise Forbidden("A viewer key may only read.")

    def require_global(self, what: str) -> None:
        """403 for a caller that is confined to a team (`what`: what it may not read)."""
        if self.scope is not None:
            raise Forbidden(f"A key that belongs to a team may not read {what}.")

    def require_team(self, team_id: str | None) -> None:
        """A caller confined to a team may only see or act inside that team."""
        if self.scope is not None and team_id != self.scope:
            raise Forbidden(f"A {self.role} key of a team may only see or manage its own team.")

    def require_key_in_scope(self, key: ApiKey) -> None:
        """The key is one this caller may see or act on: inside its team, and for a team-scoped
        caller never an admin key (a row written before issue 17 may give one a team)."""
        self.require_team(key.team_id)
        if self.scope is not None and key.role == ADMIN:
            raise Forbidden(f"A {self.role} key may not see or manage an admin key.")

    def require_manages(self, key: ApiKey) -> None:
        """The caller may change, rotate or revoke the key: a team_admin only keys of its team
        whose role is at most its own."""
        self.require_key_in_scope(key)
        if self.role == TEAM_ADMIN and key.role not in MANAGED_BY_TEAM_ADMIN:
            raise Forbidden("A team_admin key may only manage inference, viewer and team_admin keys.")

    def require_may_grant(self, role: str | None) -> None:
        """A team_admin grants no role above viewer (and the key it writes stays in its team)."""
        if self.role == TEAM_ADMIN and role not in GRANTED_BY_TEAM_ADMIN:
            raise Forbidden("A team_admin key may only create inference or viewer keys.")


def check_models(models: list[str] | None, known: frozenset[str]) -> None:
    """422 naming the models that are not configured."""
    unknown = sorted(set(models or ()) - known)
    if unknown:
        raise Unprocessable(
            f"Unknown model(s): {', '.join(unknown)[:300]}.", param="models", code="unknown_model"
        )


def check_metadata(metadata: dict[str, Any] | None) -> None:
    """422 for metadata gatecore reads that it could not use: `run_id` (a benchmark run id) and
    `log_bodies` (true or false) and `guardrails` (names of configured guardrails)."""
    if not metadata:
        return
    if "run_id" in metadata and valid_run_id(metadata["run_id"]) is None:
        raise Unprocessable(
            "metadata.run_id must be 1-128 characters of letters, digits and . _ : + = @ -.",
            param="metadata.run_id",
            code="invalid_run_id",
        )
    if "log_bodies" in metadata and not isinstance(metadata["log_bodies"], bool):
        raise Unprocessable("metadata.log_bodies must be true or false.", param="metadata.log_bodies")
    names = metadata.get("guardrails", [])
    if not (
        isinstance(names, list)
        and len(names) <= MAX_ATTACHED_GUARDRAILS
        and all(isinstance(n, str) and 0 < len(n) <= 100 for n in names)
    ):
        raise Unprocessable(
            f"metadata.guardrails must be a list of at most {MAX_ATTACHED_GUARDRAILS} guardrail names.",
            param="metadata.guardrails",
        )
