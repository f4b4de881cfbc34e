"""The fair-queue stage of models served by local engines (`models[].queue`), and its recorder.

While a model's pool has room (a deployment with fewer than `target_in_flight` of this worker's
requests in flight, whose engine does not report itself saturated) and nobody waits, a request goes
on at once. Otherwise it waits in the model's fair queue (routing/fair_queue.py): per tenant (team,
key or user), in order of finish tag on token cost (prompt tokens plus the expected output) over its
class's weight. A slot freed by a finished request (the recorder) goes to the queue's head, on the
deployment that freed it or any other with room. A waiter whose client goes away leaves at once;
one that waited its class's maximum gets a 429 with a Retry-After.

Placed after the cache (a hit never queues) and before the upstream call: the limits were counted
when the request arrived, so a waiting request holds its concurrency slot.
"""

from __future__ import annotations

import asyncio
import math
import time
from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from gatecore.config.queue import QueueConfig, SaturationConfig
from gatecore.config.schema import GatecoreConfig
from gatecore.errors import Forbidden, InvalidRequest, RateLimited
from gatecore.request import RequestContext
from gatecore.request.tokens import count_input_tokens
from gatecore.routing.deployment import Deployment
from gatecore.routing.fair_queue import FairQueue, Waiter
from gatecore.routing.stage import fit_of
from gatecore.routing.table import ModelRoute, RouteTable, assign, saturated
from gatecore.telemetry.labels import label_text
from gatecore.telemetry.metrics import QUEUE_WAIT_BOUNDS

if TYPE_CHECKING:
    from gatecore.policy.key_policy import KeyPolicy

PRIORITY_HEADER = "x-gatecore-priority"
# Distinct tenants given their own metrics series per worker; the rest are counted as "other".
MAX_TENANT_SERIES = 200
MAX_LABEL = 64
# While requests wait, how often the pool is looked at again (engine figures change between polls).
RECHECK_S = 0.05
# Tenants remembered as active (headroom) at most.
MAX_ACTIVE = 4096
RETRY_AFTER_MAX_S = 60
_ADMITTED, _GONE, _TIMED_OUT = 0, 1, 2


class QueueTimeout(RateLimited):
    """The request waited its class's maximum in the model's fair queue (429, with Retry-After)."""

    code = "queue_timeout"


class Ticket:
    """A waiting request: its context and tenant, and the future its wait ends on."""

    __slots__ = ("ctx", "future", "tenant")

    def __init__(self, ctx: RequestContext, tenant: str, future: asyncio.Future[int]):
        self.ctx = ctx
        self.tenant = tenant
        self.future = future


class PoolQueue:
    """One model's fair queue, the slots its deployments have, and its figures for /metrics."""

    __slots__ = (
        "active",
        "capacity",
        "classes",
        "config",
        "default_class",
        "held",
        "held_by",
        "hold_s",
        "queue",
        "rejections",
        "route",
        "saturation",
        "timer",
        "waits",
    )

    def __init__(self, route: ModelRoute, config: QueueConfig, saturation: SaturationConfig):
        self.route = route
        self.config = config
        self.saturation = saturation
        self.classes = config.classes
        self.default_class = next(iter(config.classes))
        self.queue: FairQueue[Ticket] = FairQueue(config.max_queued)
        self.held: dict[Deployment, int] = {d: 0 for d in route.deployments}
        self.capacity = config.target_in_flight * len(route.deployments)
        # Headroom bookkeeping: slots each tenant holds, and when each tenant was last seen.
        self.held_by: dict[str, int] = {}
        self.active: dict[str, float] = {}
        self.hold_s = 1.0  # moving average of how long a request holds its slot (Retry-After)
        self.timer: asyncio.TimerHandle | None = None
        self.waits: dict[tuple[str, str], list[float]] = {}  # (tenant, class) → histogram row
        self.rejections: dict[tuple[str, str, str], int] = {}  # (tenant, class, reason) → count

    def has_room(self, deployment: Deployment, now: float, stalled: bool) -> bool:
        """Below `target_in_flight` and available, and not saturated by its engine's own figures
        unless the pool is `stalled` (this worker holds nothing in it: one request goes anyway, so
        figures that never clear cannot stop the pool)."""
        held = self.held.get(deployment, 0)
        if held >= self.config.target_in_flight or not deployment.available(now):
            return False
        return stalled or not saturated(deployment, self.saturation)

    def seen(self, tenant: str, now: float) -> None:
        """Note the tenant as active (headroom counts the tenants seen within `active_s`)."""
        active = self.active
        if tenant not in active and len(active) >= MAX_ACTIVE:
            horizon = now - self.config.active_s
            self.active = active = {t: at for t, at in active.items() if at > horizon}
            if len(active) >= MAX_ACTIVE:
                active.clear()
        active[tenant] = now

    def over_share(self, tenant: str, now: float) -> bool:
        """Whether the last `headroom` free slots are closed to `tenant`: it holds at least its equal
        share of the pool among the tenants active now, and some other tenant is active."""
        headroom = self.config.headroom
        if not headroom or self.capacity - sum(self.held.values()) > headroom:
            return False
        horizon = now - self.config.active_s
        others = sum(1 for t, at in self.active.items() if at > horizon and t != tenant)
        if not others:
            return False
        return self.held_by.get(tenant, 0) * (others + 1) >= self.capacity

    def room_for(self, ctx: RequestContext, tenant: str) -> Deployment | None:
        """The deployment `ctx` may go to now: its routed one when that has room, else the one with
        room holding fewest of this worker's requests (None: the pool is busy, or only its headroom
        is free and the tenant has its share)."""
        now = time.monotonic()
        if self.over_share(tenant, now):
            return None
        stalled = not any(self.held.values())
        chosen = ctx.deployment
        assert chosen is None or isinstance(chosen, Deployment)
        if chosen is not None and chosen in self.held and self.has_room(chosen, now, False):
            return chosen
        best: Deployment | None = None
        for candidate in self.route.ordered(ctx.tags, fit_of(ctx)):
            if candidate.upstream_model(ctx.client_model) is None or not self.has_room(candidate, now, False):
                continue
            if best is None or self.held.get(candidate, 0) < self.held.get(best, 0):
                best = candidate
        if (
            best is None
            and stalled
            and chosen is not None
            and chosen in self.held
            and self.has_room(chosen, now, True)
        ):
            return chosen
        return best

    def classify(self, ctx: RequestContext, by: str) -> tuple[str, str]:
        """The request's tenant (its metrics label) and class (400: unknown class; 403: a class of
        higher weight than the key's own that the key may not pick)."""
        key = ctx.key
        own = self.default_class
        if key is not None:
            chosen = key.metadata.get("priority")
            if isinstance(chosen, str) and chosen in self.classes:
                own = chosen
        klass = own
        asked = ctx.headers.get(PRIORITY_HEADER) if ctx.headers is not None else None
        if asked:
            asked = asked.strip()
            if asked not in self.classes:
                raise InvalidRequest(
                    f"Unknown {PRIORITY_HEADER} '{asked[:MAX_LABEL]}' for the model '{self.route.name}' "
                    f"(one of: {', '.join(self.classes)}).",
                    code="unknown_priority",
                )
            if self.classes[asked] > self.classes[own] and not _may_pick(key, asked):
                raise Forbidden(
                    f"This key may not use the priority '{asked}' (its own is '{own}'); it may lower it.",
                    code="priority_not_allowed",
                )
            klass = asked
        return _tenant(key, by), klass


def _may_pick(key: KeyPolicy | None, klass: str) -> bool:
    """Whether the key's metadata `priorities` lists `klass` (classes above its own it may use)."""
    if key is None:
        return False
    allowed = key.metadata.get("priorities")
    return isinstance(allowed, list) and klass in allowed


def _tenant(key: KeyPolicy | None, by: str) -> str:
    if key is None:
        return "anonymous"
    scope = key.team if by == "team" else key.user if by == "user" else None
    if scope is not None:
        return f"{scope.kind}:{scope.name}"[:MAX_LABEL]
    return f"key:{key.name or key.id}"[:MAX_LABEL]


class PoolGate:
    """The stage (`__call__`) over every queued model, and the recorder that frees slots."""

    __slots__ = ("_admitted", "_labels", "by_route", "default_max_tokens")

    def __init__(self, config: GatecoreConfig, routes: RouteTable):
        self.default_max_tokens = config.limits.default_max_tokens
        self.by_route: dict[ModelRoute, PoolQueue] = {}
        by_name = {r.name: r for r in routes.all_routes()}
        for model in config.models:
            route = by_name.get(model.name)
            if model.queue is not None and route is not None:
                saturation = model.routing.saturation or SaturationConfig()
                self.by_route[route] = PoolQueue(route, model.queue, saturation)
        # Requests holding a slot: context → (its pool, tenant, the deployment whose slot it holds, since).
        self._admitted: dict[RequestContext, tuple[PoolQueue, str, Deployment, float]] = {}
        self._labels: set[str] = set()  # tenants with their own series

    def __call__(self, ctx: RequestContext) -> Any:
        pool = self.by_route.get(ctx.route) if ctx.route is not None else None  # type: ignore[call-overload]
        if pool is None:
            return None
        tenant, klass = pool.classify(ctx, pool.config.by)
        weight = pool.classes[klass]
        cost = self._cost(ctx)
        queue = pool.queue
        if pool.config.headroom:
            pool.seen(tenant, time.monotonic())
        if not queue.waiting:
            deployment = pool.room_for(ctx, tenant)
            if deployment is not None:
                queue.pass_through(tenant, weight, cost)
                self._admit(ctx, pool, tenant, deployment)
                self._observe(pool, tenant, klass, 0.0)
                return None
        if queue.full:
            self._reject(pool, tenant, klass, "full")
            raise QueueTimeout(
                f"The queue of the model '{pool.route.name}' is full; retry later.",
                code="queue_full",
                headers=[("retry-after", str(self._retry_after(pool)))],
            )
        return self._wait(ctx, pool, tenant, klass, weight, cost)

    def _cost(self, ctx: RequestContext) -> float:
        """Token cost: the prompt's tokens (the route's count when it made one) plus the output asked
        for (else the limits' default), every choice."""
        counted = ctx.prompt_count
        if counted is not None:
            prompt = counted[1]
        else:
            deployment = ctx.deployment
            tokenizer = deployment.tokenizer if deployment is not None else "o200k_base"
            prompt = count_input_tokens(ctx.body, tokenizer)
        output = (ctx.max_tokens or self.default_max_tokens) * ctx.choices if ctx.endpoint.generates else 0
        return float(prompt + output)

    async def _wait(
        self, ctx: RequestContext, pool: PoolQueue, tenant: str, klass: str, weight: float, cost: float
    ) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        since = time.monotonic()
        waiter = pool.queue.push(tenant, klass, weight, cost, Ticket(ctx, tenant, future))
        max_wait = pool.config.class_max_wait_s.get(klass, pool.config.max_wait_s)
        deadline = loop.call_later(max_wait, _settle, future, _TIMED_OUT)
        watch = getattr(ctx.client, "client_disconnect", None)
        if watch is not None:
            # Asked for only by requests that wait (granian keeps each such future until the end).
            watch().add_done_callback(lambda _: _settle(future, _GONE))
        self._dispatch(pool)  # it may be the head, and the pool may have room for it
        try:
            outcome = await future
        finally:
            deadline.cancel()
            if not future.done() or future.cancelled() or future.result() != _ADMITTED:
                pool.queue.leave(waiter)
        if outcome == _ADMITTED:
            self._observe(pool, tenant, klass, time.monotonic() - since)
            return
        if outcome == _GONE:
            ctx.client_gone = True  # the chain records a 499 and answers nothing
            raise QueueTimeout("The client went away while queued.", code="client_gone")
        self._reject(pool, tenant, klass, "timeout")
        raise QueueTimeout(
            f"The model '{pool.route.name}' is busy: the request waited {max_wait:g} s in its queue "
            f"(priority '{klass}'); retry later.",
            headers=[("retry-after", str(self._retry_after(pool)))],
        )

    def _admit(self, ctx: RequestContext, pool: PoolQueue, tenant: str, deployment: Deployment) -> None:
        if deployment is not ctx.deployment:
            upstream_model = deployment.upstream_model(ctx.client_model)
            assert upstream_model is not None  # room_for checked it
            assign(ctx, deployment, upstream_model)
        pool.held[deployment] = pool.held.get(deployment, 0) + 1
        pool.held_by[tenant] = pool.held_by.get(tenant, 0) + 1
        self._admitted[ctx] = (pool, tenant, deployment, time.monotonic())

    def _dispatch(self, pool: PoolQueue) -> None:
        """Send on waiting requests, head first, while the pool has room for the head."""
        queue = pool.queue
        while (head := queue.peek()) is not None:
            ticket = head.item
            if ticket.future.done():  # settled (timed out, gone) but not yet resumed to leave
                queue.leave(head)
                continue
            deployment = pool.room_for(ticket.ctx, ticket.tenant)
            if deployment is None:
                break
            queue.pop()
            self._admit(ticket.ctx, pool, ticket.tenant, deployment)
            ticket.future.set_result(_ADMITTED)
        self._arm(pool)

    def _arm(self, pool: PoolQueue) -> None:
        """Look at the pool again shortly while requests wait (a saturated engine's figures clear
        between slots freed here)."""
        if pool.queue.waiting and pool.timer is None:
            pool.timer = asyncio.get_running_loop().call_later(RECHECK_S, self._recheck, pool)

    def _recheck(self, pool: PoolQueue) -> None:
        pool.timer = None
        self._dispatch(pool)

    def record(self, ctx: RequestContext, finished_ns: int) -> None:
        """A request ended: free its slot and send the queue's head on."""
        entry = self._admitted.pop(ctx, None)
        if entry is None:
            return
        pool, tenant, deployment, since = entry
        pool.held[deployment] -= 1
        left = pool.held_by[tenant] - 1
        if left:
            pool.held_by[tenant] = left
        else:
            del pool.held_by[tenant]
        pool.hold_s += 0.1 * (time.monotonic() - since - pool.hold_s)
        if pool.queue.waiting:
            self._dispatch(pool)

    async def aclose(self) -> None:
        for pool in self.by_route.values():
            if pool.timer is not None:
                pool.timer.cancel()
                pool.timer = None

    def _retry_after(self, pool: PoolQueue) -> int:
        """Seconds until the queue has drained this far: the waiting requests over the pool's slots,
        times how long a request holds one."""
        slots = max(1, pool.capacity)
        seconds = pool.hold_s * (pool.queue.waiting + 1) / slots
        return min(RETRY_AFTER_MAX_S, max(1, math.ceil(seconds)))

    def _label(self, tenant: str) -> str:
        labels = self._labels
        if tenant in labels:
            return tenant
        if len(labels) < MAX_TENANT_SERIES:
            labels.add(tenant)
            return tenant
        return "other"

    def _observe(self, pool: PoolQueue, tenant: str, klass: str, seconds: float) -> None:
        key = (self._label(tenant), klass)
        row = pool.waits.get(key)
        if row is None:
            row = pool.waits[key] = [0.0] * (len(QUEUE_WAIT_BOUNDS) + 2)
        row[bisect_left(QUEUE_WAIT_BOUNDS, seconds)] += 1
        row[-1] += seconds

    def _reject(self, pool: PoolQueue, tenant: str, klass: str, reason: str) -> None:
        key = (self._label(tenant), klass, reason)
        pool.rejections[key] = pool.rejections.get(key, 0) + 1

    def series(self) -> tuple[list[list[Any]], list[list[Any]]]:
        """This worker's queue figures as metrics snapshot rows (telemetry/metrics.py `extra`)."""
        counters: list[list[Any]] = []
        histograms: list[list[Any]] = []
        for pool in self.by_route.values():
            model = pool.route.name
            lengths: dict[tuple[str, str], int] = {}
            for (tenant, klass), count in pool.queue.counts.items():
                key = (self._label(tenant), klass)
                lengths[key] = lengths.get(key, 0) + count
            for tenant, klass in pool.waits:
                lengths.setdefault((tenant, klass), 0)  # a drained queue shows as 0, not as gone
            for (tenant, klass), count in lengths.items():
                labels = label_text(model=model, tenant=tenant, **{"class": klass})
                counters.append(["gatecore_queue_length", labels, float(count)])
            for (tenant, klass), row in pool.waits.items():
                labels = label_text(model=model, tenant=tenant, **{"class": klass})
                histograms.append(["gatecore_queue_wait_seconds", labels, list(row)])
            for (tenant, klass, reason), count in pool.rejections.items():
                labels = label_text(model=model, tenant=tenant, reason=reason, **{"class": klass})
                counters.append(["gatecore_queue_rejections_total", labels, float(count)])
        return counters, histograms


def _settle(future: asyncio.Future[int], outcome: int) -> None:
    if not future.done():
        future.set_result(outcome)


def pool_gate(config: GatecoreConfig, routes: RouteTable) -> PoolGate | None:
    """The worker's fair-queue stage, or None when no model has a `queue`."""
    if not any(model.queue is not None for model in config.models):
        return None
    return PoolGate(config, routes)


__all__ = ["PRIORITY_HEADER", "PoolGate", "QueueTimeout", "Waiter", "pool_gate"]
