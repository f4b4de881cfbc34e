"""Who may do what on the admin API.

`admin` (and the master key) may do everything; `viewer` may read everything; `team_admin` manages
the keys of its own team and reads its team and users; keys without a role (inference keys) get 403.
"""

from __future__ import annotations

from typing import Any

from gatecore.errors import Forbidden, Unprocessable
from gatecore.policy.key_policy import KeyPolicy
from gatecore.run_id import valid_run_id

ADMIN, TEAM_ADMIN, VIEWER = "admin", "team_admin", "viewer"


class Caller:
    """The authenticated caller of one admin request."""

    __slots__ = ("actor", "role", "team_id")

    def __init__(self, policy: KeyPolicy):
        if policy.role not in (ADMIN, TEAM_ADMIN, VIEWER):
            raise Forbidden("This key has no admin role; use the master key or a key with an admin role.")
        self.role = policy.role
        self.actor = policy.id
        self.team_id = policy.team.id if policy.team is not None else None
        if self.role == TEAM_ADMIN and self.team_id is None:
            raise Forbidden("This team_admin key belongs to no team.")

    def require_admin(self) -> None:
        if self.role != ADMIN:
            raise Forbidden("This action needs the admin role.")

    def require_writer(self) -> None:
        if self.role == VIEWER:
            raise Forbidden("A viewer key may only read.")

    def require_team(self, team_id: str | None) -> None:
        """A team_admin may only act inside its own team."""
        if self.role == TEAM_ADMIN and team_id != self.team_id:
            raise Forbidden("A team_admin key may only manage its own team.")


def check_models(models: list[str] | None, known: frozenset[str]) -> None:
    """422 naming the models that are not configured."""
    unknown = sorted(set(models or ()) - known)
    if unknown:
        raise Unprocessable(
            f"Unknown model(s): {', '.join(unknown)[:300]}.", param="models", code="unknown_model"
        )


def check_metadata(metadata: dict[str, Any] | None) -> None:
    """422 for metadata gatecore reads that it could not use: `run_id` (a benchmark run id) and
    `log_bodies` (true or false)."""
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
