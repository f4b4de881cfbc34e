"""An example gatecore stage: refuses requests that lack a required header (or carry a value not in
the allowed list), with a 403 in the route's API shape, like any built-in stage's refusal.

Placed by config:

    pipeline:
      stages:
        - {use: header_guard, after: auth, options: {header: x-team-tag, allowed: [blue, green]}}
"""

from __future__ import annotations

from typing import Any

from gatecore.errors import Forbidden
from gatecore.request import RequestContext


class HeaderGuard:
    """The stage: `async def __call__(ctx)`, raising a GatewayError to answer the client itself."""

    __slots__ = ("allowed", "header")

    def __init__(self, header: str, allowed: frozenset[str]):
        self.header = header
        self.allowed = allowed

    async def __call__(self, ctx: RequestContext) -> None:
        value = ctx.headers.get(self.header)
        if value is None:
            raise Forbidden(f"This gateway needs the '{self.header}' header.", code="header_required")
        if self.allowed and value not in self.allowed:
            raise Forbidden(f"'{self.header}' does not name an allowed value.", code="header_not_allowed")


def build(options: dict[str, Any]) -> HeaderGuard:
    """The factory gatecore calls with the placement's `options`."""
    header = options.get("header")
    if not isinstance(header, str) or not header:
        raise ValueError("header_guard needs options.header (a header name)")
    return HeaderGuard(header.lower(), frozenset(str(v) for v in options.get("allowed", ())))
