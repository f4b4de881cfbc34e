"""Hedged requests (opt-in per model, `routing.hedge`): when the first attempt has produced no answer
head after the model's delay (a set one, or its observed 95th percentile), the same request goes to
another deployment too; the first head that is not a failure wins and the other exchange is closed
at once, so only the winner is relayed and accounted (billed once).

The hedge runs on a shallow copy of the request context: each exchange registers itself in its own
context's `upstream`, so the loser can be aborted alone, and the winner's is handed to the request.
"""

from __future__ import annotations

import asyncio
import copy
import time

from gatecore.errors import UpstreamUnreachable
from gatecore.limits.stage import Limits
from gatecore.request import RequestContext
from gatecore.routing.deployment import Deployment
from gatecore.routing.hedge_policy import HedgePolicy
from gatecore.routing.stage import fit_of
from gatecore.routing.table import ModelRoute, assign
from gatecore.upstream.response import UpstreamResponse


def _ok(task: asyncio.Task[UpstreamResponse]) -> bool:
    if not task.done() or task.cancelled() or task.exception() is not None:
        return False
    status = task.result().status
    return status < 429 or 429 < status < 500


def _drop(task: asyncio.Task[UpstreamResponse], ctx: RequestContext) -> None:
    """Stop a losing exchange: cancel it if still waiting, and close its connection either way."""
    if not task.done():
        task.cancel()
    elif not task.cancelled() and task.exception() is None:
        task.result().abort()
    upstream = ctx.upstream
    if upstream is not None:
        ctx.upstream = None
        upstream.abort()


def _second(ctx: RequestContext, route: ModelRoute, first: Deployment) -> tuple[Deployment, str] | None:
    now = time.monotonic()
    for deployment in route.ordered(ctx.tags, fit_of(ctx)):
        if deployment is first or deployment.retry_in(now) > 0:
            continue
        upstream_model = deployment.upstream_model(ctx.client_model)
        if upstream_model is not None:
            return deployment, upstream_model
    return None


async def send_hedged(
    ctx: RequestContext, route: ModelRoute, policy: HedgePolicy, first: Deployment, limits: Limits
) -> tuple[UpstreamResponse, Deployment]:
    """The first attempt, hedged: the winning answer (head read) and the deployment that gave it.
    When neither succeeds the first attempt's own outcome is returned or raised, for the retry loop.
    The hedge counts against its deployment's own limits; when they refuse, there is no hedge."""
    started = time.monotonic()
    primary = asyncio.ensure_future(first.provider.send(ctx, ctx.upstream_model, first.timeouts))
    done, _ = await asyncio.wait((primary,), timeout=policy.delay())
    second = None if done else _second(ctx, route, first)
    shadow = None
    if second is not None:
        shadow = copy.copy(ctx)
        shadow.upstream = None
        assign(shadow, *second)  # the hedge's own deployment, as its exchange sees it
        # The shadow shares the request's grant: the hedge's is added to it, and settles with the real
        # figures only if the hedge is the one that answered. Refused by its limits: no hedge.
        if await limits.admit_move(shadow, route.name) is not None:
            second = None
    if second is None or shadow is None:
        response = await primary
        policy.observe(time.monotonic() - started)
        return response, first
    deployment, upstream_model = second
    if ctx.limits is None:
        ctx.limits = shadow.limits
    hedge = asyncio.ensure_future(deployment.provider.send(shadow, upstream_model, deployment.timeouts))
    ctx.attempts += 1
    pending: set[asyncio.Task[UpstreamResponse]] = {primary, hedge}
    try:
        while pending:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if ctx.client_gone:
                raise UpstreamUnreachable("The client went away while the upstreams were called.")
            if _ok(primary):
                _drop(hedge, shadow)
                policy.observe(time.monotonic() - started)
                return primary.result(), first
            if _ok(hedge):
                _drop(primary, ctx)
                ctx.upstream = shadow.upstream
                assign(ctx, deployment, upstream_model)
                policy.observe(time.monotonic() - started)
                return hedge.result(), deployment
    except BaseException:
        _drop(primary, ctx)
        _drop(hedge, shadow)
        raise
    # Neither answered well: the first attempt's outcome goes to the retry loop; the hedge's is dropped.
    _drop(hedge, shadow)
    return await primary, first
