"""The retry state of one request, from its first failed attempt on: which deployment is next, how
long to wait before it, and the last answer an upstream gave (relayed when no later attempt answers).
"""

from __future__ import annotations

import asyncio
import random
import time

from gatecore.errors import GatewayError, UpstreamUnreachable
from gatecore.limits.stage import Limits
from gatecore.request import RequestContext
from gatecore.routing.deployment import Deployment
from gatecore.routing.stage import fit_of
from gatecore.routing.table import ModelRoute, assign
from gatecore.upstream.response import UpstreamResponse, WholeAnswer

MAX_ERROR_BYTES = 1024 * 1024
# Response headers providers read from an error answer (decode_error, Retry-After).
KEPT_HEADERS = (b"retry-after", b"retry-after-ms", b"x-amzn-errortype")
MAX_HOLD_S = 60.0


class StoredAnswer(WholeAnswer):
    """An upstream's answer read whole while other attempts were made: relayed if it stays the last
    answer any upstream gave."""

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


def kept_headers(response: UpstreamResponse) -> list[tuple[bytes, bytes]]:
    """The headers an answer read whole is relayed with later, taken while its head is still there (a
    kept-alive connection's head is reset once the body is read)."""
    return [(name, value) for name in KEPT_HEADERS if (value := response.header(name)) is not None]


class Retrying:
    """The retry state of one request, from its first failed attempt on."""

    __slots__ = ("banned", "ctx", "last_answer", "limits", "not_before", "order", "policy", "tries")

    def __init__(self, ctx: RequestContext, route: ModelRoute, limits: Limits):
        self.ctx = ctx
        self.policy = route.retries
        self.limits = limits
        # Every deployment this request may go to, in the order attempts go through them, with the
        # model name each is sent and the model (this one or a fallback) whose deployment it is.
        self.order: list[tuple[Deployment, str, str]] = []
        fit = fit_of(ctx)
        for candidate in _routes(ctx, route):
            for deployment in candidate.ordered(ctx.tags, fit):
                upstream_model = deployment.upstream_model(ctx.client_model)
                if upstream_model is not None:
                    self.order.append((deployment, upstream_model, candidate.name))
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
        # Untried deployments first, in order; then back round to the least tried. One out of
        # service (open circuit, failed health check, ejected), or whose Retry-After or quota reset
        # runs past what the policy waits, is left out.
        now = time.monotonic()
        best: Deployment | None = None
        best_tries = 0
        for deployment, _, _ in self.order:
            if deployment in self.banned:
                continue
            wait = deployment.retry_in(now)
            if wait > 0 and (deployment.out_of_service(now) or wait > self.policy.retry_after_max_s):
                continue
            tries = self.tries.get(deployment, 0)
            if tries == 0:
                return deployment
            if tries >= self.policy.per_deployment:
                continue
            if best is None or tries < best_tries:
                best, best_tries = deployment, tries
        return best

    async def move_to(self, deployment: Deployment | None) -> Deployment | None:
        """Make the next attempt go to `deployment`, or to the next one after it whose own limits
        (its deployment's and its model's rules, Limits.admit_move) admit the request: a target that
        refuses is out of this request, like one whose Retry-After runs past the policy. Waits the
        backoff before returning the target; None when no target is left."""
        ctx = self.ctx
        left = (ctx.deployment, ctx.upstream_model, ctx.deployment_id)  # the request's if none admits
        while deployment is not None:
            for candidate, upstream_model, model in self.order:
                if candidate is deployment:
                    assign(ctx, deployment, upstream_model)
                    refusal = await self.limits.admit_move(ctx, model)
                    break
            else:
                refusal = None
            if refusal is None:
                return await self._wait_for(deployment)
            self.banned.add(deployment)
            deployment = self.next_deployment(deployment, None)
        ctx.deployment, ctx.upstream_model, ctx.deployment_id = left
        return None

    async def _wait_for(self, deployment: Deployment) -> Deployment:
        """Wait the backoff (and any Retry-After) before going back to `deployment`."""
        tries = self.tries.get(deployment, 0)
        policy = self.policy
        now = time.monotonic()
        delay = max(deployment.retry_in(now), self.not_before.get(deployment, now) - now)
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
        return deployment

    async def keep_answer(self, deployment: Deployment, response: UpstreamResponse) -> None:
        """Read a failed attempt's error answer whole, to relay it if no later attempt answers."""
        headers = kept_headers(response)
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
