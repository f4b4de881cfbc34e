"""The chain's last stage, the upstream call: attempts across deployments and fallback models, then
the relay of the answer.

An attempt that fails before anything reached the client — a connection error, a timeout before the
answer's head, a 5xx or 429 head — is retried on the model's next deployment, then on its
`fallbacks`, and round again while `retries.count` allows, with exponential backoff and full jitter
before going back to a deployment already tried, and the upstream's Retry-After honoured up to
`retries.retry_after_max_s`. A 2xx stream is handed to its relay once its first bytes arrived: one
that ends or breaks before them is a failed attempt too. After that nothing is retried: a stream that
breaks ends with an error event.

A model with `context_fallbacks` or `content_policy_fallbacks` has its refusals read before they are
relayed (pipeline/redirects.py). The retry boundary (pipeline/retry_boundary.py) is a stream's first
bytes: "context length exceeded" or a content-policy refusal takes the
request to those models instead.

When every attempt fails the client gets the last answer an upstream gave (its status and error, in
the client's API shape), or 502/504 when no upstream answered at all.

The first attempt costs what the single call did before: the retry bookkeeping (`Retrying`) is built
only once an attempt failed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from gatecore.config.schema import ServerConfig
from gatecore.errors import GatewayError, UpstreamUnreachable
from gatecore.limits.stage import Limits
from gatecore.pipeline.disconnect_watch import DisconnectWatch
from gatecore.pipeline.hedge import send_hedged
from gatecore.pipeline.redirects import examine, redirect
from gatecore.pipeline.retry_boundary import first_bytes
from gatecore.pipeline.retrying import Retrying, StoredAnswer
from gatecore.relay.buffered import relay_buffered
from gatecore.relay.streaming import relay_stream
from gatecore.request import RequestContext
from gatecore.routing.deployment import Deployment
from gatecore.routing.table import ModelRoute, assign
from gatecore.upstream.deadlines import DeadlineSweeper
from gatecore.upstream.retry_after import retry_after_seconds


class UpstreamCall:
    """The upstream call stage: sends the request where routing put it (retrying as above) and
    relays the answer to the client."""

    __slots__ = ("limits", "sweeper", "watch_after")

    def __init__(self, sweeper: DeadlineSweeper, server: ServerConfig, limits: Limits):
        self.sweeper = sweeper
        self.watch_after = server.disconnect_watch_after
        self.limits = limits  # a request that moves counts against its new target's limits

    async def __call__(self, ctx: RequestContext) -> None:
        """Send the request to its deployment (retrying as above) and relay the answer."""
        sweeper = self.sweeper
        watch_after = self.watch_after
        route, deployment = ctx.route, ctx.deployment
        if TYPE_CHECKING:  # the route stage puts routing's own classes there; not checked per request
            assert isinstance(route, ModelRoute) and isinstance(deployment, Deployment)
        proto = ctx.client
        watch = DisconnectWatch(ctx, proto, sweeper.now() + watch_after)
        sweeper.add(watch)
        retrying: Retrying | None = None
        visited: set[ModelRoute] | None = None  # models this request was redirected from or to
        # The upstream's time runs from here: failed attempts and the waits between them are not gatecore's
        # overhead (x-gatecore-overhead-ms), only the time before and after.
        upstream_from = time.perf_counter_ns()
        try:
            while True:
                sent = time.perf_counter_ns()
                deployment.inflight += 1
                try:
                    hedge = route.hedge if retrying is None else None
                    if hedge is None:
                        response = await deployment.provider.send(
                            ctx, ctx.upstream_model, deployment.timeouts
                        )
                    else:
                        response, winner = await send_hedged(ctx, route, hedge, deployment, self.limits)
                        if winner is not deployment:
                            deployment.inflight -= 1
                            winner.inflight += 1
                            deployment = winner
                    quota = deployment.quota
                    if quota is not None:
                        quota.observe(deployment, response)
                    if ctx.stream and response.status < 300 and deployment.provider.is_stream(ctx, response):
                        # Nothing has reached the client yet: a stream that ends or breaks before its
                        # first bytes fails this attempt (the relay would await them anyway).
                        response = await first_bytes(response)
                except GatewayError as exc:
                    deployment.inflight -= 1
                    if not exc.retryable or ctx.client_gone:
                        raise
                    deployment.breaker.failure()
                    retrying = retrying or Retrying(ctx, route, self.limits)
                    moved_to = await retrying.move_to(retrying.next_deployment(deployment, None))
                    if moved_to is not None:
                        deployment = moved_to
                        continue
                    response, deployment = _last_answer(ctx, retrying, exc)
                    break
                except BaseException:
                    deployment.inflight -= 1
                    raise
                status = response.status
                if status < 429 or 429 < status < 500:
                    breaker = deployment.breaker
                    breaker.ok += 1
                    if breaker.failing:
                        deployment.succeeded()
                    if deployment.timed:
                        deployment.observe_ttft((time.perf_counter_ns() - sent) / 1e9)
                    if route.redirects:
                        try:
                            response, targets = await examine(ctx, route, deployment, response)
                        except BaseException:
                            deployment.inflight -= 1
                            raise
                        visited = visited or {route}
                        moved = await self._redirect(ctx, targets, visited) if targets else None
                        if moved is not None:
                            # A refusal another model may not give: the request goes there instead, and the
                            # refusal is the answer if nothing else answers.
                            assert isinstance(response, StoredAnswer)
                            deployment.inflight -= 1
                            route, deployment = moved
                            retrying = Retrying(ctx, route, self.limits)
                            retrying.last_answer = response
                            continue
                    break
                deployment.breaker.failure()
                retrying = retrying or Retrying(ctx, route, self.limits)
                next_deployment = retrying.next_deployment(deployment, retry_after_seconds(response))
                if next_deployment is None or ctx.client_gone:
                    break  # the last answer: relayed as the upstream gave it
                deployment.inflight -= 1
                await retrying.keep_answer(deployment, response)
                moved_to = await retrying.move_to(next_deployment)
                if moved_to is None:  # every other target's limits refused: this answer is the last
                    unread = UpstreamUnreachable("The upstream's answer could not be read.")
                    response, deployment = _last_answer(ctx, retrying, unread)
                    break
                deployment = moved_to
            try:
                provider = deployment.provider
                if provider.is_stream(ctx, response):
                    # From here on a gone client shows as a failed write of the next event.
                    sweeper.discard(watch)
                    await relay_stream(proto, ctx, response, provider, upstream_from)
                else:
                    await relay_buffered(proto, ctx, response, provider, upstream_from)
            finally:
                deployment.inflight -= 1
        finally:
            sweeper.discard(watch)
            watch.ctx = None
            if not ctx.upstream_ns:  # no answer was relayed: the time until the error was the upstream's
                ctx.upstream_ns = time.perf_counter_ns() - upstream_from
        if ctx.client_gone and ctx.status < 400:
            ctx.status = 499

    async def _redirect(
        self, ctx: RequestContext, targets: list[ModelRoute], visited: set[ModelRoute]
    ) -> tuple[ModelRoute, Deployment] | None:
        """The first of `targets` that `redirect` finds and whose own limits admit the request (the
        request keeps its route and deployment when none does)."""
        route, deployment, upstream_model = ctx.route, ctx.deployment, ctx.upstream_model
        while (moved := redirect(ctx, targets, visited)) is not None:
            if await self.limits.admit_move(ctx, moved[0].name) is None:
                return moved
            ctx.attempts -= 1  # never made
        ctx.route = route
        if TYPE_CHECKING:
            assert isinstance(deployment, Deployment)
        assign(ctx, deployment, upstream_model)
        return None


def _last_answer(
    ctx: RequestContext, retrying: Retrying, error: GatewayError
) -> tuple[StoredAnswer, Deployment]:
    """The last answer an upstream gave, made the request's answer and deployment when no attempt is
    left; `error` when none was kept."""
    stored = retrying.last_answer
    if stored is None:
        raise error
    deployment = stored.deployment
    assign(ctx, deployment, stored.upstream_model)
    deployment.inflight += 1
    return stored, deployment
