"""The compiled gateway: config turned once into immutable stages, route table and providers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gatecore.auth.static_keys import AuthStage
from gatecore.config.schema import GatecoreConfig
from gatecore.ledger.access_log import AccessLog
from gatecore.providers.base import Provider, build_provider
from gatecore.request import RequestContext
from gatecore.routing.table import Deployment, ModelRoute, RouteStage, RouteTable
from gatecore.upstream.deadlines import DeadlineSweeper
from gatecore.upstream.pool import PoolSet
from gatecore.upstream.timeouts import Timeouts

Stage = Callable[[RequestContext], Awaitable[None]]


class Gateway:
    """Everything a worker needs to serve requests, built from one config snapshot."""

    __slots__ = (
        "access_log",
        "auth",
        "config",
        "disconnect_watch_after",
        "max_body_bytes",
        "pools",
        "providers",
        "routes",
        "stages",
        "sweeper",
    )

    def __init__(self, config: GatecoreConfig):
        self.config = config
        self.max_body_bytes = config.server.max_body_bytes
        self.disconnect_watch_after = config.server.disconnect_watch_after
        self.sweeper = DeadlineSweeper()
        self.pools = PoolSet(self.sweeper)
        self.providers: dict[str, Provider] = {
            p.name: build_provider(p, self.pools) for p in config.providers
        }
        routes = []
        for model in config.models:
            timeouts = Timeouts.resolve(config.server.timeouts, model.timeouts)
            deployments = [
                Deployment(self.providers[d.provider], d.model, d.weight, timeouts) for d in model.deployments
            ]
            owner = model.owned_by or model.deployments[0].provider
            routes.append(ModelRoute(model.name, deployments, owner))
        self.routes = RouteTable(routes)
        self.auth = AuthStage(config.auth)
        # The chain, in order (DESIGN.md §1). `auth` runs first, before the body is decoded, so nothing
        # of an unauthenticated request is parsed; these run after. Later stages (limits, guardrails,
        # cache) slot in here.
        self.stages: tuple[Stage, ...] = (RouteStage(self.routes),)
        self.access_log = AccessLog() if config.server.access_log else None

    def close(self) -> None:
        self.sweeper.close()
        self.pools.close()
        if self.access_log is not None:
            self.access_log.flush()


def build_gateway(config: GatecoreConfig) -> Gateway:
    """Compile a validated config into a Gateway."""
    return Gateway(config)
