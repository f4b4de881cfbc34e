"""The compiled gateway: config turned once into immutable stages, route table and providers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from gatecore.admin.deployments_api import DeploymentsApi
from gatecore.admin.router import AdminApi
from gatecore.auth.stage import AuthStage, hash_secret
from gatecore.config.schema import GatecoreConfig
from gatecore.identity.repository import IdentityRepository
from gatecore.identity.sync import IdentitySync
from gatecore.ledger.access_log import AccessLog
from gatecore.ledger.recorder import LedgerRecorder
from gatecore.limits.stage import Limits
from gatecore.pipeline.hedge import HedgePolicy
from gatecore.pricing.book import PriceBook
from gatecore.providers.base import Provider, build_provider
from gatecore.request import RequestContext
from gatecore.routing.engine_load import EngineLoad, EngineLoadPoller, EngineTarget, default_metrics_url
from gatecore.routing.table import Deployment, ModelRoute, RouteStage, RouteTable
from gatecore.store import Store, StoreError, open_store
from gatecore.store.migrations import migrate
from gatecore.telemetry.deployment_state import DeploymentStates
from gatecore.telemetry.metrics import MetricsRecorder
from gatecore.telemetry.metrics_api import MetricsApi
from gatecore.telemetry.worker_files import worker_files
from gatecore.upstream.deadlines import DeadlineSweeper
from gatecore.upstream.pool import ConnectionPool, PoolSet
from gatecore.upstream.timeouts import Timeouts

if TYPE_CHECKING:
    from gatecore.telemetry.tracing import Tracing

Stage = Callable[[RequestContext], Awaitable[None]]


class Recorder(Protocol):
    """Told about every finished inference request (access log, ledger, metrics), off the request path:
    `record` only queues; writing happens later, in batches."""

    def record(self, ctx: RequestContext, finished_ns: int) -> None: ...

    async def aclose(self) -> None:
        """Write out everything still queued (worker shutdown)."""
        ...


log = logging.getLogger("gatecore")
STORE_RETRY_S = 2.0  # between attempts to open a store that was down at start


class Gateway:
    """Everything a worker needs to serve requests, built from one config snapshot."""

    __slots__ = (
        "_store_retry",
        "admin",
        "auth",
        "config",
        "disconnect_watch_after",
        "engines",
        "identity",
        "in_flight",
        "ledger",
        "limits",
        "max_body_bytes",
        "metrics",
        "pools",
        "prices",
        "providers",
        "recorders",
        "routes",
        "stage_names",
        "stages",
        "store",
        "sweeper",
        "tag_routing",
        "tracing",
    )

    def __init__(self, config: GatecoreConfig):
        self.config = config
        self.max_body_bytes = config.server.max_body_bytes
        self.disconnect_watch_after = config.server.disconnect_watch_after
        self.sweeper = DeadlineSweeper()
        self.tracing: Tracing | None = None
        pool_class = ConnectionPool
        if config.telemetry.tracing.enabled:
            # Imported here: with tracing off, opentelemetry is never loaded.
            from gatecore.telemetry.traced_pool import TracedConnectionPool

            pool_class = TracedConnectionPool
        self.pools = PoolSet(self.sweeper, pool_class)
        self.providers: dict[str, Provider] = {
            p.name: build_provider(p, self.pools) for p in config.providers
        }
        self.prices = PriceBook()
        self.routes = build_routes(config, self.providers, self.prices)
        self.engines = EngineLoadPoller(
            engine_targets(config, self.routes, self.pools),
            config.routing.engine_metrics.interval_s,
            config.routing.engine_metrics.timeout_s,
        )
        # Tags are read from requests only when some deployment has tags.
        self.tag_routing = any(d.tags for r in self.routes.all_routes() for d in r.deployments)
        self.auth = AuthStage(config.auth)
        # The chain, in order (DESIGN.md §1). `auth` runs first, before the body is decoded, so nothing
        # of an unauthenticated request is parsed; these run after. Later stages (limits, guardrails,
        # cache) slot in here.
        stages: list[tuple[str, Stage]] = [("route", RouteStage(self.routes))]
        gpu_clock = self.prices.clock_stage()
        if gpu_clock is not None:  # only when some deployment is priced by GPU time
            stages.append(("gpu_clock", gpu_clock))
        # Limits run once the deployment is known (per-deployment limits, the tokenizer, the price).
        self.limits = Limits(config, self.prices)
        stages.append(("limits", self.limits))
        self.stages: tuple[Stage, ...] = tuple(stage for _, stage in stages)
        # Every stage whose end a request marks (RequestContext.stage_ends): auth and decoding the
        # body run before the chain. Read by x-gatecore-timing, the stage histogram, the stage spans.
        self.stage_names = ("auth", "decode", *(name for name, _ in stages))
        recorders: list[Recorder] = []
        # The ledger first: it prices the request (ctx.cost_usd) for the recorders after it.
        self.ledger: LedgerRecorder | None = None
        if config.ledger.enabled:
            assert config.store.url is not None  # read_config fills in the default
            self.ledger = LedgerRecorder(config.ledger, self.prices, config.store.url)
            recorders.append(self.ledger)
            self.limits.spent_since = self.ledger.spend_since
        if config.server.access_log:
            recorders.append(AccessLog())
        self.metrics: MetricsApi | None = None
        telemetry = config.telemetry
        if telemetry.metrics:  # after the ledger: it reads ctx.cost_usd
            metrics = MetricsRecorder(
                lambda: self.in_flight,
                worker_files(telemetry.metrics_flush_s),
                self.stage_names,
                DeploymentStates(self.routes),
            )
            self.metrics = MetricsApi(metrics, self.auth, telemetry.metrics_auth)
            recorders.append(metrics)
        if telemetry.tracing.enabled:  # after the ledger: the server span carries ctx.cost_usd
            from gatecore.telemetry.tracing import Tracing

            kinds = {p.name: p.kind for p in config.providers}
            self.tracing = Tracing(telemetry.tracing, kinds, self.stage_names)
            recorders.append(self.tracing)
        # After the ledger's recorder (it sets ctx.cost_usd): settles reservations, frees slots.
        recorders.append(self.limits)
        self.recorders: tuple[Recorder, ...] = tuple(recorders)
        self.store: Store | None = None
        self.identity: IdentitySync | None = None
        self.admin: AdminApi | None = None
        self._store_retry: asyncio.Task[None] | None = None
        # Inference requests between arrival and their recorders (drained at shutdown).
        self.in_flight = 0

    async def start(self) -> None:
        """Start polling the engines' load, open the store, apply migrations and load the stored keys
        (the worker's start)."""
        self.engines.start()
        if self.metrics is not None:
            self.metrics.recorder.start()
        if self.auth.jwt is not None:
            await self.auth.jwt.start()
        if not await self._open_store(first=True):
            # Serve with the master and config keys meanwhile; /readyz and the admin API say 503.
            # The ledger spools its rows and keeps trying the store on its own.
            if self.ledger is not None:
                await self.ledger.start(None)
            self._store_retry = asyncio.get_running_loop().create_task(self._reopen_store())

    async def _open_store(self, first: bool) -> bool:
        url = self.config.store.url
        assert url is not None  # read_config fills in the default
        try:
            store = await open_store(url)
        except StoreError as exc:
            if first:
                log.error("the store is unavailable (%s); retrying every %.0f s", exc, STORE_RETRY_S)
            return False
        try:
            await migrate(store)
        except StoreError as exc:
            await store.close()
            if first:
                log.error("cannot migrate the store (%s); retrying every %.0f s", exc, STORE_RETRY_S)
            return False
        self.store = store
        if not first:
            log.warning("the store is reachable; stored keys are served from now on")
        if first and self.ledger is not None:
            await self.ledger.start(store)
        secret = hash_secret(self.config.auth)
        # The auth stage's hasher keys stored hashes too (its secret is the configured one when set).
        repository = IdentityRepository(self.store, self.auth.hasher if secret else None)
        self.identity = IdentitySync(repository, self.auth, self.config.store.poll_interval_s)
        await self.identity.start()
        model_names = frozenset(self.routes.names())
        self.admin = AdminApi(
            repository,
            self.auth,
            model_names,
            self.config.auth.rotation_grace_s,
            DeploymentsApi(self.routes),
        )
        return True

    async def _reopen_store(self) -> None:
        while True:
            await asyncio.sleep(STORE_RETRY_S)
            if await self._open_store(first=False):
                return

    @property
    def ready(self) -> bool:
        return self.identity is not None and self.identity.loaded

    async def aclose(self) -> None:
        """Shut the worker down: let requests still in flight finish (their last bytes may already be
        with the client while the task has yet to run its recorders), then flush and close."""
        deadline = time.monotonic() + self.config.server.shutdown_grace_s
        # A poll, not an Event: shutdown is the only waiter, and requests pay nothing to be counted.
        while self.in_flight and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        if self.in_flight:
            log.warning("%d requests still in flight at shutdown; they are not recorded", self.in_flight)
        if self._store_retry is not None:
            self._store_retry.cancel()
        await self.engines.aclose()
        for recorder in self.recorders:
            await recorder.aclose()
        if self.identity is not None:
            await self.identity.close()
        if self.auth.jwt is not None:
            await self.auth.jwt.close()
        if self.store is not None:
            await self.store.close()
        self.close()

    def close(self) -> None:
        self.sweeper.close()
        self.pools.close()


def build_routes(config: GatecoreConfig, providers: dict[str, Provider], prices: PriceBook) -> RouteTable:
    """The model table: each model's deployments (with their breakers and prices), strategy, retries,
    fallbacks."""
    defaults = config.routing
    kinds = {p.name: p.kind for p in config.providers}
    routes: dict[str, ModelRoute] = {}
    for model in config.models:
        timeouts = Timeouts.resolve(config.server.timeouts, model.timeouts)
        deployments = [
            Deployment(
                providers[d.provider],
                d.model,
                d.weight,
                timeouts,
                priority=d.priority,
                tags=d.tags,
                breaker=defaults.breaker,
            )
            for d in model.deployments
        ]
        for deployment, d in zip(deployments, model.deployments, strict=True):
            prices.add(deployment, kinds[d.provider], d.pricing)
        owner = model.owned_by or model.deployments[0].provider
        routes[model.name] = ModelRoute(
            model.name, deployments, owner, retries=model.retries or defaults.retries, routing=model.routing
        )
    for model in config.models:
        route = routes[model.name]
        route.fallbacks = [routes[name] for name in model.fallbacks if name != model.name]
        if model.routing.hedge is not None and len(model.deployments) > 1:
            route.hedge = HedgePolicy(model.routing.hedge)
    return RouteTable(list(routes.values()))


def engine_targets(config: GatecoreConfig, routes: RouteTable, pools: PoolSet) -> list[EngineTarget]:
    """The replicas of `least_loaded` models whose `/metrics` is polled (each given an EngineLoad)."""
    base_urls = {p.name: p.base_url for p in config.providers}
    stale_after = config.routing.engine_metrics.stale_after_s
    targets: list[EngineTarget] = []
    for model in config.models:
        if model.routing.strategy != "least_loaded":
            continue
        route = routes.exact.get(model.name) or next(r for r in routes.wildcards if r.name == model.name)
        for deployment, entry in zip(route.deployments, model.deployments, strict=True):
            url = entry.metrics_url or default_metrics_url(base_urls.get(entry.provider))
            if url is not None:
                deployment.load = EngineLoad(stale_after)
                targets.append(EngineTarget(url, pools, deployment, deployment.load))
    return targets


def build_gateway(config: GatecoreConfig) -> Gateway:
    """Compile a validated config into a Gateway (call `start()` on the worker's loop next)."""
    return Gateway(config)
