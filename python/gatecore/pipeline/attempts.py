"""The upstream call of one inference request: attempts across deployments and fallback models.

An attempt that fails before anything reached the client — a connection error, a timeout before the
answer's head, a 5xx or 429 head — is retried on the model's next deployment, then on its
`fallbacks`, and round again while `retries.count` allows, with exponential backoff and full jitter
before going back to a deployment already tried, and the upstream's Retry-After honoured up to
`retries.retry_after_max_s`. Once a 2xx head is handed to a relay, nothing is retried: a stream that
breaks after that ends with an error event, as before.

When every attempt fails the client gets the last answer an upstream gave (its status and error, in
the client's API shape), or 502/504 when no upstream answered at all.

The first attempt costs what the single call did before: the retry bookkeeping (`Retrying`) is built
only once an attempt failed.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any

from gatecore.errors import GatewayError, UpstreamUnreachable
from gatecore.pipeline.hedge import send_hedged
from gatecore.relay.buffered import relay_buffered
from gatecore.relay.streaming import relay_stream
from gatecore.request import RequestContext
from gatecore.routing.breaker import CLOSED
from gatecore.routing.table import Deployment, ModelRoute, assign
from gatecore.upstream.response import UpstreamResponse, WholeAnswer
from gatecore.upstream.retry_after import retry_after_seconds

if TYPE_CHECKING:
    from gatecore.pipeline.gateway import Gateway

MAX_ERROR_BYTES = 1024 * 1024
# Response headers providers read from an error answer (decode_error, Retry-After).
KEPT_HEADERS = (b"retry-after", b"retry-after-ms", b"x-amzn-errortype")
MAX_HOLD_S = 60.0


class DisconnectWatch:
    """Aborts the request's upstream exchange the moment the client goes away.

    granian's client_disconnect() future is never released when a request ends normally (about
    1.8 KB per call, measured), so it is only asked for once the request has waited until `due`
    (the DeadlineSweeper calls `expire`).
    """

    __slots__ = ("ctx", "due", "proto")

    def __init__(self, ctx: RequestContext, proto: Any, due: float):
        self.ctx: RequestContext | None = ctx
        self.proto = proto
        self.due = due

    def expire(self) -> None:
        if self.ctx is not None:
            self.proto.client_disconnect().add_done_callback(self.disconnected)

    def disconnected(self, _: Any) -> None:
        ctx = self.ctx
        if ctx is None:  # the request already ended
            return
        ctx.client_gone = True
        upstream = ctx.upstream
        if upstream is not None:
            ctx.upstream = None
            upstream.abort()


async def call_upstream(gateway: Gateway, ctx: RequestContext, proto: Any) -> None:
    """Send the request to its deployment (retrying as above) and relay the answer to the client."""
    deployment = ctx.deployment
    route = ctx.route
    assert deployment is not None and route is not None
    sweeper = gateway.sweeper
    watch = DisconnectWatch(ctx, proto, sweeper.now() + gateway.disconnect_watch_after)
    sweeper.add(watch)
    retrying: Retrying | None = None
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
                    response = await deployment.provider.send(ctx, ctx.upstream_model, deployment.timeouts)
                else:
                    response, winner = await send_hedged(ctx, route, hedge, deployment)
                    if winner is not deployment:
                        deployment.inflight -= 1
                        winner.inflight += 1
                        deployment = winner
            except GatewayError as exc:
                deployment.inflight -= 1
                if not exc.retryable or ctx.client_gone:
                    raise
                deployment.breaker.failure()
                retrying = retrying or Retrying(ctx)
                next_deployment = retrying.next_deployment(deployment, None)
                if next_deployment is not None:
                    deployment = await retrying.wait_for(next_deployment)
                    continue
                stored = retrying.last_answer
                if stored is None:
                    raise
                response, deployment = stored, stored.deployment
                assign(ctx, deployment, stored.upstream_model)
                deployment.inflight += 1
                break
            except BaseException:
                deployment.inflight -= 1
                raise
            status = response.status
            if status < 429 or 429 < status < 500:
                breaker = deployment.breaker
                breaker.ok += 1
                if breaker.failing:
                    breaker.succeeded()
                if deployment.alpha:
                    deployment.observe_ttft((time.perf_counter_ns() - sent) / 1e9)
                break
            deployment.breaker.failure()
            retrying = retrying or Retrying(ctx)
            next_deployment = retrying.next_deployment(deployment, retry_after_seconds(response))
            if next_deployment is None or ctx.client_gone:
                break  # the last answer: relayed as the upstream gave it
            deployment.inflight -= 1
            await retrying.keep_answer(deployment, response)
            deployment = await retrying.wait_for(next_deployment)
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


class StoredAnswer(WholeAnswer):
    """An upstream's error answer read whole while other attempts were made: relayed if it stays the
    last answer any upstream gave."""

    def __init__(
        self,
        deployment: Deployment,
        upstream_model: str,
        response: UpstreamResponse,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ):
        super().__init__(response.status, response.content_type, body, headers)
        self.deployment = deployment
        self.upstream_model = upstream_model


class Retrying:
    """The retry state of one request, from its first failed attempt on."""

    __slots__ = ("banned", "ctx", "last_answer", "not_before", "order", "policy", "tries")

    def __init__(self, ctx: RequestContext):
        route = ctx.route
        assert route is not None
        self.ctx = ctx
        self.policy = route.retries
        # Every deployment this request may go to, in the order attempts go through them, with the
        # model name each is sent.
        self.order: list[tuple[Deployment, str]] = []
        for candidate in _routes(ctx, route):
            for deployment in candidate.ordered(ctx.tags):
                upstream_model = deployment.upstream_model(ctx.client_model)
                if upstream_model is not None:
                    self.order.append((deployment, upstream_model))
        self.tries: dict[Deployment, int] = {}
        # Deployments out of this request: their Retry-After is longer than the policy waits.
        self.banned: set[Deployment] = set()
        # When a deployment asked (Retry-After within the policy's cap) to be called again.
        self.not_before: dict[Deployment, float] = {}
        self.last_answer: StoredAnswer | None = None

    def next_deployment(self, failed: Deployment, wait_hint: float | None) -> Deployment | None:
        """Where the next attempt goes after `failed` failed, or None when there is no next attempt:
        out of retries, out of time, or nowhere left to go."""
        ctx = self.ctx
        self.tries[failed] = self.tries.get(failed, 0) + 1
        if wait_hint is not None:
            # Other requests skip the deployment for that long too (bounded: a clock-skewed date or
            # a huge value must not take it out of service for good).
            failed.breaker.hold(min(wait_hint, MAX_HOLD_S))
            if wait_hint > self.policy.retry_after_max_s:
                self.banned.add(failed)
            else:
                self.not_before[failed] = time.monotonic() + wait_hint
        if ctx.attempts > self.policy.count or self._elapsed() >= self.policy.budget_s:
            return None
        # Untried deployments first, in order; then back round to the least tried. One whose circuit
        # is open, or whose Retry-After runs past what the policy waits, is left out.
        now = time.monotonic()
        best: Deployment | None = None
        best_tries = 0
        for deployment, _ in self.order:
            if deployment in self.banned:
                continue
            breaker = deployment.breaker
            wait = breaker.retry_in(now)
            if wait > 0 and (breaker.state is not CLOSED or wait > self.policy.retry_after_max_s):
                continue
            tries = self.tries.get(deployment, 0)
            if tries == 0:
                return deployment
            if tries >= self.policy.per_deployment:
                continue
            if best is None or tries < best_tries:
                best, best_tries = deployment, tries
        return best

    async def wait_for(self, deployment: Deployment) -> Deployment:
        """Wait the backoff (and any Retry-After) before going back to `deployment`, then make it the
        request's deployment for the next attempt."""
        tries = self.tries.get(deployment, 0)
        policy = self.policy
        now = time.monotonic()
        delay = max(deployment.breaker.retry_in(now), self.not_before.get(deployment, now) - now)
        if tries:
            delay = max(
                delay, random.uniform(0, min(policy.backoff_max_s, policy.backoff_s * 2 ** (tries - 1)))
            )
        delay = min(delay, max(0.0, policy.budget_s - self._elapsed()))
        if delay > 0:
            await asyncio.sleep(delay)
        ctx = self.ctx
        if ctx.client_gone:
            raise UpstreamUnreachable("The client went away before the upstream was called again.")
        deployment.breaker.available(time.monotonic())  # takes the half-open probe when it is one
        ctx.attempts += 1
        for candidate, upstream_model in self.order:
            if candidate is deployment:
                assign(ctx, deployment, upstream_model)
                break
        return deployment

    async def keep_answer(self, deployment: Deployment, response: UpstreamResponse) -> None:
        """Read a failed attempt's error answer whole, to relay it if no later attempt answers."""
        # The headers an error answer is read with later, taken while the head is still there.
        headers = [(name, value) for name in KEPT_HEADERS if (value := response.header(name)) is not None]
        try:
            body = await response.read_all(MAX_ERROR_BYTES)
        except GatewayError:
            response.abort()
            return
        self.last_answer = StoredAnswer(deployment, self.ctx.upstream_model, response, headers, body)

    def _elapsed(self) -> float:
        return (time.perf_counter_ns() - self.ctx.started) / 1e9


def _routes(ctx: RequestContext, route: ModelRoute) -> list[ModelRoute]:
    """The model and the fallback models the client's key may use, in order."""
    key = ctx.key
    return [route, *(f for f in route.fallbacks if key is None or key.allows(f.name))]
