"""The model table compiled from config: each client-facing model's deployments, strategy, retries
and fallbacks (the route stage, routing/stage.py, reads it)."""

from __future__ import annotations

import time

from gatecore.config.queue import SaturationConfig
from gatecore.config.routing import ModelRoutingConfig, RetriesConfig
from gatecore.request import RequestContext
from gatecore.routing.affinity import affine, prefix_key
from gatecore.routing.deployment import Deployment
from gatecore.routing.engine_load import EnginesBusy
from gatecore.routing.fit import Fit
from gatecore.routing.hedge_policy import HedgePolicy
from gatecore.routing.strategies import Strategy, build_strategy


class ModelRoute:
    """A client-facing model name, its deployments by priority, its strategy, retries and fallbacks."""

    __slots__ = (
        "adapter_aware",
        "content_policy_fallbacks",
        "context_fallbacks",
        "deployments",
        "fallbacks",
        "hedge",
        "name",
        "owned_by",
        "plain",
        "prefix",
        "redirects",
        "retries",
        "roomy",
        "routing",
        "saturation",
        "shed_at",
        "single",
        "strategy",
        "tiers",
    )

    def __init__(
        self,
        name: str,
        deployments: list[Deployment],
        owned_by: str,
        *,
        retries: RetriesConfig | None = None,
        routing: ModelRoutingConfig | None = None,
    ):
        self.name = name
        self.deployments = deployments
        self.owned_by = owned_by
        self.prefix = name[:-1] if name.endswith("*") else None
        self.retries = retries or RetriesConfig()
        self.routing = routing or ModelRoutingConfig()
        # Resolved once every route exists (routing/compile.py).
        self.fallbacks: list[ModelRoute] = []
        self.context_fallbacks: list[ModelRoute] = []
        self.content_policy_fallbacks: list[ModelRoute] = []
        # Either of the two above is set: answers are checked for a refusal another model may not give.
        self.redirects = False
        # A body up to this many bytes (plus max_tokens) fits every known context window of the model
        # and its fallbacks, so its tokens need no counting (a token is at least one byte of text).
        self.roomy = 1 << 62
        # Hedged requests (pipeline/hedge.py): the model's HedgePolicy when `routing.hedge` is set.
        self.hedge: HedgePolicy | None = None
        priorities = sorted({d.priority for d in deployments})
        self.tiers = [[d for d in deployments if d.priority == p] for p in priorities]
        if self.routing.strategy == "lowest_cost":
            # Cheapest first within each tier (ties keep config order), so retries go by cost too.
            for tier in self.tiers:
                tier.sort(key=_cost_rank)
        self.strategy: Strategy = build_strategy(self.routing.strategy, self.tiers[0] if self.tiers else [])
        # The one deployment of a plain single-deployment model: picked without asking the strategy.
        self.single = deployments[0] if len(deployments) == 1 and deployments[0].model != "*" else None
        # least_loaded with max_queue: shed when even the least loaded replica's queue is this deep.
        self.shed_at = self.routing.max_queue if self.routing.strategy == "least_loaded" else 0
        # LoRA-aware (set when the engines' figures are polled, routing/compile.py): a request prefers
        # the replicas whose engine reports its upstream model (an adapter) loaded.
        self.adapter_aware = False
        # Engine-aware: replicas whose engines report saturation are skipped while another has room.
        self.saturation = self.routing.saturation
        # Neither shedding, prefix affinity nor saturation: the strategy's choice can be taken as it is.
        self.plain = not self.shed_at and not self.routing.prefix_affinity_bytes and self.saturation is None
        for deployment in deployments:
            deployment.prefix = self.prefix
            if self.routing.strategy == "lowest_latency":
                deployment.alpha = self.routing.ewma_alpha
                deployment.timed = True
            if self.routing.outliers is not None:
                deployment.timed = True

    def pick(
        self,
        tags: frozenset[str] | None = None,
        body: bytes = b"",
        fit: Fit | None = None,
        client_model: str = "",
    ) -> Deployment | None:
        """A deployment for the next request: the strategy's choice within the best priority tier that
        has one available (circuit not open, not held, tags matching, and fitting the request's needs);
        None when there is none. Raises EnginesBusy when the engines' own queues say every replica is
        past `max_queue`."""
        affinity = self.routing.prefix_affinity_bytes
        key = prefix_key(body, affinity) if affinity else 0
        if tags is None and self.tiers:
            # The strategy's choice over the whole tier, when it fits and is available; only when it
            # is not are the candidates filtered (which keeps each one's share among those that fit).
            tier = self.tiers[0]
            chosen = (
                affine(tier, key, self.routing.prefix_load_factor) if affinity else self.strategy.choose(tier)
            )
            if self.adapter_aware and client_model:
                chosen = self._with_adapter(tier, chosen, client_model)
            if self.saturation is not None and saturated(chosen, self.saturation):
                chosen = self._unsaturated(tier, chosen, fit, key)
            if (fit is None or fit.allows(chosen)) and (not chosen.breaker.failing or recovered(chosen)):
                if self.shed_at:
                    self._shed_if_busy(chosen)
                return chosen
        now = time.monotonic()
        for tier in self.tiers:
            candidates = [d for d in tier if _matches(d, tags, fit) and d.available(now)]
            if candidates:
                chosen = (
                    affine(candidates, key, self.routing.prefix_load_factor)
                    if affinity
                    else self.strategy.choose(candidates)
                )
                if self.adapter_aware and client_model:
                    chosen = self._with_adapter(candidates, chosen, client_model)
                if self.saturation is not None and saturated(chosen, self.saturation):
                    chosen = self._unsaturated(candidates, chosen, fit, key)
                if self.shed_at:
                    self._shed_if_busy(chosen)
                chosen.breaker.available(now)  # takes the half-open probe when it is one
                return chosen
        return None

    def _with_adapter(
        self, candidates: list[Deployment], chosen: Deployment, client_model: str
    ) -> Deployment:
        """`chosen` when its engine has the request's adapter (its upstream model) loaded or none
        reports it; else the strategy's choice among those that do (LoRA affinity: no adapter swap)."""
        if _has_adapter(chosen, client_model):
            return chosen
        loaded = [d for d in candidates if _has_adapter(d, client_model)]
        return self.strategy.choose(loaded) if loaded else chosen

    def _unsaturated(
        self, candidates: list[Deployment], chosen: Deployment, fit: Fit | None, key: int
    ) -> Deployment:
        """The strategy's choice among the replicas of `candidates` that are not saturated and can
        take the request; `chosen` when every one is (nowhere better to go)."""
        assert self.saturation is not None
        now = time.monotonic()
        roomy = [
            d
            for d in candidates
            if d is not chosen
            and not saturated(d, self.saturation)
            and (fit is None or fit.allows(d))
            and d.available(now)
        ]
        if not roomy:
            return chosen
        return (
            affine(roomy, key, self.routing.prefix_load_factor)
            if self.routing.prefix_affinity_bytes
            else self.strategy.choose(roomy)
        )

    def _shed_if_busy(self, least_loaded: Deployment) -> None:
        load = least_loaded.load
        if load is None or not load.fresh() or load.queued(least_loaded.inflight) < self.shed_at:
            return
        busy = EnginesBusy(
            f"Every replica of the model '{self.name}' is busy (at least {self.shed_at} requests queued); "
            "retry later.",
            headers=[("retry-after", str(load.retry_after(self.shed_at, least_loaded.inflight)))],
        )
        busy.status = self.routing.shed_status
        if busy.status == 503:
            busy.type = "api_error"
        raise busy

    def ordered(self, tags: frozenset[str] | None, fit: Fit | None = None) -> list[Deployment]:
        """Every deployment matching `tags` and fitting the request, best priority first: the order
        retries go through."""
        return [d for tier in self.tiers for d in tier if _matches(d, tags, fit)]


def _has_adapter(deployment: Deployment, client_model: str) -> bool:
    load = deployment.load
    if load is None or not load.adapters or not load.fresh():
        return False
    return deployment.upstream_model(client_model) in load.adapters


def saturated(deployment: Deployment, limits: SaturationConfig) -> bool:
    """The replica's engine reports (freshly) a queue or a KV-cache use at or past `limits`."""
    load = deployment.load
    if load is None or not load.fresh():
        return False
    return load.queued(deployment.inflight) >= limits.max_waiting or load.kv_cache >= limits.max_kv_cache


def recovered(deployment: Deployment) -> bool:
    """Whether a deployment whose `failing` flag is up may take a request now (its hold or cooldown
    is over); if so this request is its half-open probe. Taking it here, rather than choosing again,
    matters for strategies that move on at every choice (round robin would never come back to it)."""
    now = time.monotonic()
    if not deployment.available(now):
        return False
    deployment.breaker.available(now)
    return True


def _matches(deployment: Deployment, tags: frozenset[str] | None, fit: Fit | None) -> bool:
    if tags is not None and not tags <= deployment.tags:
        return False
    return fit is None or fit.allows(deployment)


def _cost_rank(deployment: Deployment) -> float:
    return float("inf") if deployment.cost is None else deployment.cost


class RouteTable:
    """Client model name → route: exact names first, then wildcard prefixes, longest first."""

    __slots__ = ("exact", "wildcards")

    def __init__(self, routes: list[ModelRoute]):
        self.exact = {r.name: r for r in routes if r.prefix is None}
        self.wildcards = sorted((r for r in routes if r.prefix is not None), key=lambda r: -len(r.name))

    def find(self, model: str) -> ModelRoute | None:
        route = self.exact.get(model)
        if route is not None:
            return route
        for wildcard in self.wildcards:
            assert wildcard.prefix is not None
            if model.startswith(wildcard.prefix) and len(model) > len(wildcard.prefix):
                return wildcard
        return None

    def names(self) -> list[str]:
        """Every client-facing model name, wildcards included (`openai/*`)."""
        return [*self.exact, *(r.name for r in self.wildcards)]

    def visible_to(self, allowed: frozenset[str] | None) -> list[ModelRoute]:
        """Routes a key may use, in config order."""
        routes = [*self.exact.values(), *self.wildcards]
        return routes if allowed is None else [r for r in routes if r.name in allowed]

    def all_routes(self) -> list[ModelRoute]:
        return [*self.exact.values(), *self.wildcards]


def assign(ctx: RequestContext, deployment: Deployment, upstream_model: str) -> None:
    """Make `deployment` the one the request goes to (x-gatecore-model shows it)."""
    ctx.deployment = deployment
    ctx.upstream_model = upstream_model
    ctx.deployment_id = (
        deployment.id if deployment.model != "*" else f"{deployment.provider.name}/{upstream_model}"
    )
