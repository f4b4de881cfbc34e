"""The routing part of a config, compiled once per worker: the model table (deployments with their
breakers, capabilities, prices and quota tracking; strategies; fallbacks of every kind) and the
background monitors that keep the deployments' state current (engine load, health checks, outliers).
"""

from __future__ import annotations

from gatecore.config.schema import DEFAULT_BASE_URLS, GatecoreConfig, ModelConfig
from gatecore.pricing.book import PriceBook
from gatecore.providers.base import Provider
from gatecore.request.tokens import load_hf_tokenizer
from gatecore.routing.capabilities import CapabilitySource
from gatecore.routing.deployment import Deployment
from gatecore.routing.engine_load import EngineLoad, EngineLoadPoller, EngineTarget, default_metrics_url
from gatecore.routing.health_check import (
    DEFAULT_PATH,
    DEFAULT_PATHS,
    HealthChecker,
    HealthState,
    HealthTarget,
    health_settings,
)
from gatecore.routing.hedge_policy import HedgePolicy
from gatecore.routing.outliers import OutlierDetector
from gatecore.routing.quota import QuotaState, heads_for
from gatecore.routing.table import ModelRoute, RouteTable
from gatecore.upstream.pool import PoolSet
from gatecore.upstream.timeouts import Timeouts


def build_routes(config: GatecoreConfig, providers: dict[str, Provider], prices: PriceBook) -> RouteTable:
    """The model table: each model's deployments (with their breakers, capabilities, prices and quota
    tracking), strategy, retries, and its fallback, context-fallback and content-policy-fallback
    models."""
    defaults = config.routing
    kinds = {p.name: p.kind for p in config.providers}
    routes: dict[str, ModelRoute] = {}
    for model in config.models:
        timeouts = Timeouts.resolve(config.server.timeouts, model.timeouts)
        deployments: list[Deployment] = []
        for d in model.deployments:
            window = d.context_window if d.context_window is not None else model.context_window
            deployment = Deployment(
                providers[d.provider],
                d.model,
                d.weight,
                timeouts,
                priority=d.priority,
                tags=d.tags,
                breaker=defaults.breaker,
                capabilities=CapabilitySource(d.model, (d.capabilities, model.capabilities), window),
            )
            if d.tokenizer is not None and d.tokenizer.path is not None:
                deployment.tokenizer = load_hf_tokenizer(d.tokenizer.path)
            prices.add(deployment, kinds[d.provider], d.pricing)
            deployment.cost = prices.routing_cost(deployment)
            if model.routing.quota is not None:
                deployment.quota = QuotaState(model.routing.quota, heads_for(kinds[d.provider]))
            deployments.append(deployment)
        owner = model.owned_by or model.deployments[0].provider
        routes[model.name] = ModelRoute(
            model.name, deployments, owner, retries=model.retries or defaults.retries, routing=model.routing
        )
    for model in config.models:
        route = routes[model.name]
        route.fallbacks = [routes[name] for name in model.fallbacks if name != model.name]
        route.context_fallbacks = [routes[name] for name in model.context_fallbacks if name != model.name]
        route.content_policy_fallbacks = [
            routes[name] for name in model.content_policy_fallbacks if name != model.name
        ]
        route.redirects = bool(route.context_fallbacks or route.content_policy_fallbacks)
        if model.routing.hedge is not None and len(model.deployments) > 1:
            route.hedge = HedgePolicy(model.routing.hedge)
    for route in routes.values():
        route.roomy = _smallest_window(route)
    return RouteTable(list(routes.values()))


def _smallest_window(route: ModelRoute) -> int:
    """The smallest context window known (configured, or the table's for a named upstream model) among
    the deployments a request to `route` may go to without a context fallback; 2**62 when none is."""
    windows = [
        fixed.context_window
        for candidate in (route, *route.fallbacks)
        for deployment in candidate.deployments
        if (fixed := deployment.capabilities.fixed) is not None and fixed.context_window is not None
    ]
    return min(windows, default=1 << 62)


def engine_targets(config: GatecoreConfig, routes: RouteTable, pools: PoolSet) -> list[EngineTarget]:
    """The replicas whose `/metrics` is polled (each given an EngineLoad): those of `least_loaded`
    models, of models with a fair `queue` and of models with `routing.saturation`."""
    base_urls = {p.name: p.base_url for p in config.providers}
    stale_after = config.routing.engine_metrics.stale_after_s
    targets: list[EngineTarget] = []
    for model, route in _models_with_routes(config, routes):
        engine_aware = model.queue is not None or model.routing.saturation is not None
        if model.routing.strategy != "least_loaded" and not engine_aware:
            continue
        if len(route.deployments) > 1:
            # LoRA affinity needs the engines' adapter lists: such a route takes the full pick.
            route.adapter_aware = True
            route.plain = False
        for deployment, entry in zip(route.deployments, model.deployments, strict=True):
            url = entry.metrics_url or default_metrics_url(base_urls.get(entry.provider))
            if url is not None:
                deployment.load = EngineLoad(stale_after)
                base_url = base_urls.get(entry.provider)
                targets.append(EngineTarget(url, pools, deployment, deployment.load, base_url))
    return targets


def health_targets(config: GatecoreConfig, routes: RouteTable, pools: PoolSet) -> list[HealthTarget]:
    """The deployments whose health is checked (each given a HealthState)."""
    providers = {p.name: p for p in config.providers}
    targets: list[HealthTarget] = []
    for model, route in _models_with_routes(config, routes):
        for deployment, entry in zip(route.deployments, model.deployments, strict=True):
            provider = providers[entry.provider]
            settings = health_settings(entry.health_check, provider.kind, config.routing.health_check)
            base_url = provider.base_url or DEFAULT_BASE_URLS.get(provider.kind)
            if settings is None or not base_url:
                continue
            path = settings.path or DEFAULT_PATHS.get(provider.kind, DEFAULT_PATH)
            deployment.health = HealthState(settings, path)
            api_key = provider.api_key if provider.kind == "openai" else None
            targets.append(HealthTarget(base_url, pools, deployment, deployment.health, api_key))
    return targets


def _models_with_routes(config: GatecoreConfig, routes: RouteTable) -> list[tuple[ModelConfig, ModelRoute]]:
    found: list[tuple[ModelConfig, ModelRoute]] = []
    for model in config.models:
        route = routes.exact.get(model.name) or next(r for r in routes.wildcards if r.name == model.name)
        found.append((model, route))
    return found


class RoutingMonitors:
    """The background tasks that keep routing state current, started and stopped with the worker."""

    def __init__(self, config: GatecoreConfig, routes: RouteTable, pools: PoolSet):
        metrics = config.routing.engine_metrics
        self.engines = EngineLoadPoller(
            engine_targets(config, routes, pools), metrics.interval_s, metrics.timeout_s
        )
        self.health = HealthChecker(health_targets(config, routes, pools))
        self.outliers = OutlierDetector(routes.all_routes())

    def start(self) -> None:
        self.engines.start()
        self.health.start()
        self.outliers.start()

    async def aclose(self) -> None:
        await self.engines.aclose()
        await self.health.aclose()
        await self.outliers.aclose()
