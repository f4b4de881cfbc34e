"""A verified JWT's identity as a KeyPolicy: its team and user claims name tenants of the store.

A token whose team (and user) exist in the store gets that tenant's scope, so the team's allowed models
and limits apply to it as to the team's keys; the token's own models claim can only narrow further.

A token whose team claim is missing or names no team, or whose user claim names no user (of that
team), is refused with a 403 (issue 17: a typo or a deleted team gave every model with no limits),
unless `auth.jwt.unscoped` allows such tokens; they then get the models and limits it names, narrowed
by whatever did resolve. A user of another team than the token's team is always refused.
"""

from __future__ import annotations

from gatecore.auth.jwt import JwtIdentity
from gatecore.config.jwt import UnscopedTokens
from gatecore.errors import Forbidden
from gatecore.identity.records import Tenant
from gatecore.identity.snapshot import logs_bodies, scope_of
from gatecore.policy.key_policy import KeyPolicy


def token_policy(
    identity: JwtIdentity,
    teams: dict[str, Tenant],
    users: dict[str, Tenant],
    unscoped: UnscopedTokens | None = None,
    match_users: bool = True,
) -> KeyPolicy:
    """The policy of one verified token (built per token; the verifier caches the signature check).

    `match_users` is whether the config names a user claim; raises Forbidden for a token whose team
    or user does not resolve when `unscoped` is None.
    """
    team = teams.get(identity.team) if identity.team else None
    user = users.get(identity.user) if identity.user else None
    if team is not None and user is not None and user.parent_id not in (None, team.id):
        raise Forbidden(
            f"The token's user '{(identity.user or '')[:100]}' is not in its team '{team.name}'.",
            code="user_not_in_team",
        )
    unresolved = _unresolved(identity, team, user, match_users)
    if unresolved is not None and unscoped is None:
        message, code = unresolved
        raise Forbidden(message + " Tokens must name a team (and user) of the store.", code=code)
    models = identity.models
    if unresolved is not None and unscoped is not None:
        allowed = frozenset(unscoped.models)
        models = allowed if models is None else models & allowed
    for level in (team, user):
        if level is not None and level.models is not None:
            allowed = frozenset(level.models)
            models = allowed if models is None else models & allowed
    limits = unscoped if unresolved is not None else None
    subject = identity.subject or identity.user or "?"
    return KeyPolicy(
        f"jwt:{subject}"[:200],
        identity.user or subject,
        "jwt",
        models,
        source="jwt",
        team=scope_of(team),
        user=scope_of(user),
        rpm=limits.rpm if limits is not None else None,
        tpm=limits.tpm if limits is not None else None,
        max_parallel=limits.max_parallel if limits is not None else None,
        budget_usd=limits.budget_usd if limits is not None else None,
        expires_at=float(identity.expires_at),
        log_bodies=logs_bodies(team),
    )


def _unresolved(
    identity: JwtIdentity, team: Tenant | None, user: Tenant | None, match_users: bool
) -> tuple[str, str] | None:
    """Why the token's claims do not resolve (message, code), or None when they do."""
    if identity.team is None:
        return "The token has no team claim.", "missing_team_claim"
    if team is None:
        return f"The token's team '{identity.team[:100]}' is not a team of the store.", "unknown_team"
    if match_users and identity.user is None:
        return "The token has no user claim.", "missing_user_claim"
    if match_users and user is None:
        return f"The token's user '{(identity.user or '')[:100]}' is not a user of the store.", "unknown_user"
    return None
