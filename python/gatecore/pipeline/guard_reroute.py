"""A request a guardrail flagged with `reroute_to` goes to that (safer) model instead.

guardrails/ may not know routing (they are on one layer): the `guard_input` stage only records the
target on its verdict (`ctx.guard.reroute`), and this stage, right after it, moves the request the
way a refusal redirect does (pipeline/redirects.py `redirect`): the key must be allowed the target,
a deployment of it is picked, and the target's own limits admit the request (Limits.admit_move; its
refusal is the answer). A target the key may not use, or that has no deployment, refuses the request
(400 guardrail_blocked): a flagged request is never served by the model it was flagged for. The
request keeps the guards it was checked with; the answer shows the flag (`x-gatecore-guardrail`),
the deployment that served (`x-gatecore-model`, the ledger row's `deployment`).
"""

from __future__ import annotations

from collections.abc import Awaitable

from gatecore.errors import GuardrailBlocked
from gatecore.limits.stage import Limits
from gatecore.pipeline.redirects import redirect
from gatecore.request import RequestContext
from gatecore.routing.table import RouteTable


class GuardReroute:
    """The stage (a plain call unless a guard asked for a reroute)."""

    __slots__ = ("limits", "routes")

    def __init__(self, routes: RouteTable, limits: Limits):
        self.routes = routes
        self.limits = limits

    def __call__(self, ctx: RequestContext) -> Awaitable[None] | None:
        guard = ctx.guard
        if guard is None or guard.reroute is None:
            return None
        return self._move(ctx, guard.reroute, guard.flagged or "guardrail")

    async def _move(self, ctx: RequestContext, model: str, flagged_by: str) -> None:
        target = self.routes.find(model)
        if target is None or target is ctx.route:
            if target is None:
                raise GuardrailBlocked(
                    f"Guardrail '{flagged_by}' flagged this request; its model is not served."
                )
            return
        if redirect(ctx, [target], set()) is None:
            raise GuardrailBlocked(
                f"Guardrail '{flagged_by}' flagged this request, and the model it goes to is not available to this key."
            )
        ctx.attempts -= 1  # a move before any attempt, not one more attempt
        refusal = await self.limits.admit_move(ctx, target.name)
        if refusal is not None:
            raise refusal
