"""`GET /admin/v1/deployments`: every model's deployments with the routing state this worker holds.

Breakers, in-flight counts, latency averages and engine load are kept per worker process (no shared
store on the request path), so the answer is the view of the worker that served it (`worker_pid`).
"""

from __future__ import annotations

import os
import time

import msgspec

from gatecore.admin.access import TEAM_ADMIN, Caller
from gatecore.errors import Forbidden
from gatecore.routing.table import Deployment, RouteTable


class EngineLoadOut(msgspec.Struct):
    running: float
    waiting: float
    kv_cache: float
    age_s: float


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


class DeploymentsOut(msgspec.Struct):
    data: list[DeploymentOut]
    worker_pid: int


class DeploymentsApi:
    """Read-only: admin and viewer keys."""

    def __init__(self, routes: RouteTable):
        self.routes = routes

    async def index(self, caller: Caller) -> DeploymentsOut:
        if caller.role == TEAM_ADMIN:
            raise Forbidden("A team_admin key may not read the deployments' state.")
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
    )
