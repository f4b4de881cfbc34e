"""The compiled gateway: config turned once into immutable stages, route table and providers."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from gatecore.admin.deployments_api import DeploymentsApi
from gatecore.admin.router import AdminApi
from gatecore.auth.stage import AuthStage
from gatecore.config.schema import GatecoreConfig
from gatecore.config.telemetry import tracing_enabled
from gatecore.identity.repository import IdentityRepository
from gatecore.identity.secrets import hash_secret
from gatecore.identity.sync import IdentitySync
from gatecore.ledger.recorder import LedgerRecorder
from gatecore.limits.local import open_table
from gatecore.limits.stage import Limits
from gatecore.pricing.book import PriceBook
from gatecore.providers.base import Provider, build_provider
from gatecore.request import RequestContext
from gatecore.routing.compile import RoutingMonitors, build_routes
from gatecore.routing.table import RouteStage
from gatecore.store import Store, StoreError, open_store
from gatecore.store.migrations import migrate
from gatecore.telemetry.access_log import AccessLog
from gatecore.telemetry.deployment_state import DeploymentStates
from gatecore.telemetry.metrics import MetricsRecorder
from gatecore.telemetry.metrics_api import MetricsApi
from gatecore.telemetry.worker_files import worker_files
from gatecore.upstream.deadlines import DeadlineSweeper
from gatecore.upstream.pool import ConnectionPool, PoolSet

if TYPE_CHECKING:
    from gatecore.telemetry.tracing import Tracing

Stage = Callable[[RequestContext], Awaitable[None]]


class Recorder(Protocol):
    """Told about every finished inference request (access log, ledger, metrics), off the request path
    (`Gateway.finished` calls it on the loop's next turn, over that turn's batch): `record` only
    queues; writing happens later, in batches."""

    def record(self, ctx: RequestContext, finished_ns: int) -> None: ...

    async def aclose(self) -> None:
        """Write out everything still queued (worker shutdown)."""
        ...


log = logging.getLogger("gatecore")
STORE_RETRY_S = 2.0  # between attempts to open a store that was down at start


class Gateway:
    """Everything a worker needs to serve requests, built from one config snapshot."""

    __slots__ = (
        "_finished",
        "_store_retry",
        "admin",
        "auth",
        "body_log_bytes",
        "config",
        "disconnect_watch_after",
        "identity",
        "in_flight",
        "ledger",
        "limits",
        "max_body_bytes",
        "metrics",
        "monitors",
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
        traced = tracing_enabled(config.telemetry.tracing, os.environ)
        pool_class = ConnectionPool
        if traced:
            # Imported here: with tracing off, the tracer is never loaded.
            from gatecore.telemetry.traced_pool import TracedConnectionPool

            pool_class = TracedConnectionPool
        self.pools = PoolSet(self.sweeper, pool_class)
        self.providers: dict[str, Provider] = {
            p.name: build_provider(p, self.pools) for p in config.providers
        }
        # The server's shared counters (one mapping per worker): limits and GPU clocks live there.
        counters = open_table(config.limits.table_slots)
        self.prices = PriceBook(counters)
        self.routes = build_routes(config, self.providers, self.prices)
        # Engine load polling, health checks and outlier ejection, in the background.
        self.monitors = RoutingMonitors(config, self.routes, self.pools)
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
        self.limits = Limits(config, self.prices, counters)
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
        # Bodies are captured for opted-in keys only when the access log is there to write them.
        self.body_log_bytes = config.server.body_log_max_bytes if config.server.access_log else 0
        if config.server.access_log:
            recorders.append(AccessLog(body_log_bytes=self.body_log_bytes))
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
        if traced:  # after the ledger: the server span carries ctx.cost_usd
            from gatecore.telemetry.tracing import Tracing

            kinds = {p.name: p.kind for p in config.providers}
            self.tracing = Tracing(telemetry.tracing, kinds, self.stage_names, self.sweeper)
            recorders.append(self.tracing)
        # After the ledger's recorder (it sets ctx.cost_usd): settles reservations, frees slots.
        recorders.append(self.limits)
        self.recorders: tuple[Recorder, ...] = tuple(recorders)
        self.store: Store | None = None
        self.identity: IdentitySync | None = None
        self.admin: AdminApi | None = None
        self._store_retry: asyncio.Task[None] | None = None
        # Inference requests between arrival and being handed to their recorders (drained at
        # shutdown; `aclose` then records those handed over in the loop's last turn).
        self.in_flight = 0
        # Finished requests waiting for the recorders (`finished`).
        self._finished: list[tuple[RequestContext, int]] = []

    def finished(self, ctx: RequestContext, finished_ns: int) -> None:
        """Hand a finished request to the recorders, on the loop's next turn, with the others that
        finish in this one: each recorder then runs over the batch while its code and data are in
        the CPU's caches (run one request at a time, after its relay, they cost the server about
        three times what they cost in a loop). A later request's handler runs after them, so a
        scrape or a usage query made after an answer arrived counts it."""
        batch = self._finished
        batch.append((ctx, finished_ns))
        if len(batch) == 1:
            asyncio.get_running_loop().call_soon(self._record_finished)

    def _record_finished(self) -> None:
        batch, self._finished = self._finished, []
        for recorder in self.recorders:  # the ledger first: it prices for the others
            for ctx, finished_ns in batch:
                try:
                    recorder.record(ctx, finished_ns)
                except Exception:  # one recorder's failure must not cost the others their record
                    log.exception("%s failed for request %s", type(recorder).__name__, ctx.request_id)

    async def start(self) -> None:
        """Start the routing monitors (engine load, health checks, outliers) and the metrics
        snapshots, open the store, apply migrations and load the stored keys (the worker's start)."""
        self.monitors.start()
        if self.tracing is not None:
            self.tracing.start()
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
        self._record_finished()  # those finished in the loop's last turn
        if self._store_retry is not None:
            self._store_retry.cancel()
        await self.monitors.aclose()
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


def build_gateway(config: GatecoreConfig) -> Gateway:
    """Compile a validated config into a Gateway (call `start()` on the worker's loop next)."""
    return Gateway(config)
