"""The one rule between tenant levels: a level may only narrow what the level above allows."""

from __future__ import annotations

from gatecore.errors import Unprocessable
from gatecore.identity.records import ApiKey, Tenant
from gatecore.policy.fields import LIMIT_FIELDS


def check_narrows(child: Tenant | ApiKey, parent: Tenant | None, what: str) -> None:
    """A level may only narrow its parent: models within the parent's, limits at most the parent's."""
    if parent is None:
        return
    if child.models is not None and parent.models is not None:
        outside = sorted(set(child.models) - set(parent.models))
        if outside:
            raise Unprocessable(
                f"The {what} allows models its {parent.kind} '{parent.name}' does not: {', '.join(outside)}.",
                param="models",
                code="wider_than_parent",
            )
    for field in LIMIT_FIELDS:
        own, cap = getattr(child, field), getattr(parent, field)
        if own is not None and cap is not None and own > cap:
            raise Unprocessable(
                f"The {what}'s {field} ({own}) exceeds its {parent.kind} '{parent.name}' ({cap}).",
                param=field,
                code="wider_than_parent",
            )
