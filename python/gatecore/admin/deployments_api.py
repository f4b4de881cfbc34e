"""`GET /admin/v1/deployments`: every model's deployments with the routing state this worker holds.

Breakers, health checks, ejections, quotas, in-flight counts, latency averages and engine load are
kept per worker process (no shared store on the request path), so the answer is the view of the
worker that served it (`worker_pid`).
"""

from __future__ import annotations

import os
import time

import msgspec

from gatecore.admin.access import Caller
from gatecore.routing.deployment import Deployment
from gatecore.routing.table import RouteTable


class EngineLoadOut(msgspec.Struct):
    running: float
    waiting: float
    kv_cache: float
    age_s: float


class CapabilitiesOut(msgspec.Struct):
    # null: unknown (neither configured nor in the shipped model table)
    tools: bool | None
    vision: bool | None
    json: bool | None


class HealthOut(msgspec.Struct):
    """Active health checks of the deployment."""

    path: str
    consecutive_failures: int
    # The last check's problem (null: it passed); null `age_s`: no check yet.
    last_error: str | None
    age_s: float | None


class QuotaOut(msgspec.Struct):
    """The provider's remaining quota, from its last answer's rate-limit headers."""

    remaining_requests: int | None
    remaining_tokens: int | None
    age_s: float | None


class DeploymentOut(msgspec.Struct):
    model: str
    deployment: str
    provider: str
    priority: int
    weight: float
    tags: list[str]
    strategy: str
    # closed | open | half_open
    state: str
    consecutive_failures: int
    successes: int
    failures: int
    times_opened: int
    # Seconds until the deployment is tried again (open circuit, or an upstream's Retry-After).
    retry_in_s: float
    inflight: int
    ttft_ms: float | None
    engine: EngineLoadOut | None
    # false while active health checks find it down (true when unchecked)
    healthy: bool
    health: HealthOut | None
    # Seconds left of an outlier ejection (0: not ejected), and how often it was ejected.
    ejected_for_s: float
    times_ejected: int
    quota: QuotaOut | None
    # Seconds left of a hold for an exhausted quota (0: none).
    quota_hold_s: float
    context_window: int | None
    capabilities: CapabilitiesOut
    # What strategy lowest_cost ranks by: USD per 1M tokens at 3 input to 1 output (0: GPU-time
    # pricing; null: unknown).
    cost_per_1m: float | None


class DeploymentsOut(msgspec.Struct):
    data: list[DeploymentOut]
    worker_pid: int


class DeploymentsApi:
    """Read-only: admin keys and global viewer keys (not a key that belongs to a team)."""

    def __init__(self, routes: RouteTable):
        self.routes = routes

    async def index(self, caller: Caller) -> DeploymentsOut:
        caller.require_global("the deployments' state")
        now = time.monotonic()
        data = [
            _deployment_out(route.name, route.routing.strategy, d, now)
            for route in self.routes.all_routes()
            for d in route.deployments
        ]
        return DeploymentsOut(data, os.getpid())


def _deployment_out(model: str, strategy: str, d: Deployment, now: float) -> DeploymentOut:
    breaker = d.breaker
    load = d.load
    # A wildcard deployment's capabilities depend on the model asked for: its configured ones here.
    caps = d.capabilities.fixed or d.capabilities.of("")
    engine = None
    if load is not None and load.at > 0:
        engine = EngineLoadOut(load.running, load.waiting, load.kv_cache, round(now - load.at, 3))
    return DeploymentOut(
        model=model,
        deployment=d.id,
        provider=d.provider.name,
        priority=d.priority,
        weight=d.weight,
        tags=sorted(d.tags),
        strategy=strategy,
        state=breaker.state,
        consecutive_failures=breaker.failures,
        successes=breaker.ok,
        failures=breaker.failed,
        times_opened=breaker.opened,
        retry_in_s=round(breaker.retry_in(now), 3),
        inflight=d.inflight,
        ttft_ms=None if d.ttft_s is None else round(d.ttft_s * 1000, 3),
        engine=engine,
        healthy=d.healthy,
        health=_health_out(d, now),
        ejected_for_s=round(max(0.0, d.ejected_until - now), 3),
        times_ejected=d.times_ejected,
        quota=_quota_out(d, now),
        quota_hold_s=round(max(0.0, d.quota_until - now), 3),
        context_window=caps.context_window,
        capabilities=CapabilitiesOut(caps.tools, caps.vision, caps.json),
        cost_per_1m=d.cost,
    )


def _health_out(d: Deployment, now: float) -> HealthOut | None:
    state = d.health
    if state is None:
        return None
    age = round(now - state.checked_at, 3) if state.checked_at else None
    return HealthOut(state.path, state.failures, state.last_error, age)


def _quota_out(d: Deployment, now: float) -> QuotaOut | None:
    state = d.quota
    if state is None:
        return None
    age = round(now - state.at, 3) if state.at else None
    return QuotaOut(state.remaining_requests, state.remaining_tokens, age)
