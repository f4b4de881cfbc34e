"""A verified JWT's identity as a KeyPolicy: its team and user claims name tenants of the store.

A token whose team (or user) exists in the store gets that tenant's scope, so the team's allowed models
and limits apply to it as to the team's keys; the token's own models claim can only narrow further.
"""

from __future__ import annotations

from gatecore.auth.jwt import JwtIdentity
from gatecore.identity.records import Tenant
from gatecore.identity.snapshot import logs_bodies, scope_of
from gatecore.policy.key_policy import KeyPolicy


def token_policy(identity: JwtIdentity, teams: dict[str, Tenant], users: dict[str, Tenant]) -> KeyPolicy:
    """The policy of one verified token (built per token; the verifier caches the signature check)."""
    team = teams.get(identity.team) if identity.team else None
    user = users.get(identity.user) if identity.user else None
    models = identity.models
    for level in (team, user):
        if level is not None and level.models is not None:
            allowed = frozenset(level.models)
            models = allowed if models is None else models & allowed
    subject = identity.subject or identity.user or "?"
    return KeyPolicy(
        f"jwt:{subject}"[:200],
        identity.user or subject,
        "jwt",
        models,
        source="jwt",
        team=scope_of(team),
        user=scope_of(user),
        expires_at=float(identity.expires_at),
        log_bodies=logs_bodies(team),
    )
