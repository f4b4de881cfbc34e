"""The price book: what a request costs, from the shipped table, a deployment's override, or GPU time.

Prices are resolved per deployment when the config is compiled (an override, or the table entry of
its upstream model); wildcard deployments (`model: "*"`) resolve each upstream model on first use and
keep the answer. A request's cost is then a few multiplications.
"""

from __future__ import annotations

import time
from typing import Protocol

from gatecore._core import CounterTable
from gatecore.config.schema import DeploymentPricing
from gatecore.pricing import price_table
from gatecore.pricing.gpu_time import GpuClockStage, GpuMeter
from gatecore.request import RequestContext


class PricedDeployment(Protocol):
    """What the book reads of a deployment it prices (routing/deployment.py); it keys its tables by
    the deployment object itself."""

    @property
    def id(self) -> str: ...

    @property
    def model(self) -> str: ...


_PER_TOKEN = 1e-6  # prices are per 1M tokens
_CACHE_LIMIT = 4096  # upstream model names of wildcard deployments remembered


class ModelPrice:
    """USD per 1M tokens: input, output, and cached input (prompt-cache reads)."""

    __slots__ = ("cached_input_per_1m", "input_per_1m", "output_per_1m", "source")

    def __init__(self, input_per_1m: float, output_per_1m: float, cached_input_per_1m: float, source: str):
        self.input_per_1m = input_per_1m
        self.output_per_1m = output_per_1m
        self.cached_input_per_1m = cached_input_per_1m
        self.source = source  # "config", or "table:<vendor kind>:<entry>"

    def tokens_usd(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        """The cost of a request's tokens; `input_tokens` counts the cached ones too (OpenAI's way)."""
        cached = min(cached_tokens, input_tokens)
        return (
            (input_tokens - cached) * self.input_per_1m
            + cached * self.cached_input_per_1m
            + output_tokens * self.output_per_1m
        ) * _PER_TOKEN


FREE = ModelPrice(0.0, 0.0, 0.0, "none")


def table_price(kind: str, model: str) -> ModelPrice | None:
    """The shipped table's price of `model` at a provider of `kind`: the exact name, else the longest
    entry that prefixes it; None when the table has none (local engines, unknown models)."""
    table = price_table.TABLES.get(kind)
    if table is None:
        return None
    name = model
    if kind == "bedrock":
        for region in price_table.BEDROCK_REGION_PREFIXES:
            if name.startswith(region):
                name = name[len(region) :]
                break
    entry_name = name if name in table else None
    if entry_name is None:
        prefixes = [entry for entry in table if name.startswith(entry)]
        if not prefixes:
            return None
        entry_name = max(prefixes, key=len)
    input_usd, output_usd, cached_usd = table[entry_name]
    return ModelPrice(
        input_usd, output_usd, input_usd if cached_usd is None else cached_usd, f"table:{kind}:{entry_name}"
    )


def configured_price(pricing: DeploymentPricing, fallback: ModelPrice | None) -> ModelPrice:
    """A deployment's `pricing` block over the table's price (fields it leaves unset come from there)."""
    base = fallback or FREE
    input_usd = base.input_per_1m if pricing.input_per_1m is None else pricing.input_per_1m
    output_usd = base.output_per_1m if pricing.output_per_1m is None else pricing.output_per_1m
    if pricing.cached_input_per_1m is not None:
        cached_usd = pricing.cached_input_per_1m
    elif pricing.input_per_1m is not None:
        cached_usd = input_usd
    else:
        cached_usd = base.cached_input_per_1m
    return ModelPrice(input_usd, output_usd, cached_usd, "config")


class PriceBook:
    """Prices of every deployment of one config snapshot (`Gateway.prices`)."""

    __slots__ = ("_fixed", "_kinds", "_overrides", "_resolved", "_table", "meters", "version")

    def __init__(self, table: CounterTable | None = None) -> None:
        # The server's shared counter table, where GPU clocks live (a private one when not given).
        self._table = table
        self.version = price_table.VERSION
        self._fixed: dict[object, ModelPrice | None] = {}  # deployments with one upstream model
        self._overrides: dict[object, DeploymentPricing] = {}  # wildcard deployments' blocks
        self._kinds: dict[object, str] = {}
        self._resolved: dict[tuple[str, str], ModelPrice | None] = {}
        self.meters: dict[object, GpuMeter] = {}

    def add(self, deployment: PricedDeployment, kind: str, pricing: DeploymentPricing | None) -> None:
        """Register a deployment at a provider of `kind` with its config `pricing` (or None)."""
        self._kinds[deployment] = kind
        if pricing is not None and pricing.gpu_hour_usd is not None:
            if self._table is None:
                self._table = CounterTable(None, 1024)
            self.meters[deployment] = GpuMeter(self._table, deployment.id, pricing.gpu_hour_usd, pricing.gpus)
            return
        if deployment.model == "*":
            if pricing is not None:
                self._overrides[deployment] = pricing
            return
        price = table_price(kind, deployment.model)
        self._fixed[deployment] = price if pricing is None else configured_price(pricing, price)

    def routing_cost(self, deployment: object) -> float | None:
        """What strategy lowest_cost ranks a deployment by: USD per 1M tokens of a typical request,
        three input tokens to one output ((3 * input + output) / 4, the usual blend); 0 for GPU-time
        pricing (the pool is paid by the hour, so one more request while it has room costs nothing
        extra); None when unknown (no price, or a wildcard deployment, priced per model asked for)."""
        if deployment in self.meters:
            return 0.0
        price = self._fixed.get(deployment)
        if price is None:
            return None
        return (3 * price.input_per_1m + price.output_per_1m) / 4

    def clock_stage(self) -> GpuClockStage | None:
        """The stage that starts GPU clocks, or None when no deployment is priced by GPU time."""
        return GpuClockStage(self.meters) if self.meters else None

    def price_of(self, deployment: object | None, upstream_model: str) -> ModelPrice | None:
        """The token price of a request served by `deployment` as `upstream_model`."""
        if deployment is None:
            return None
        price = self._fixed.get(deployment)
        if price is not None or deployment in self._fixed:
            return price
        kind = self._kinds.get(deployment, "")
        key = (kind, upstream_model)
        if key in self._resolved:
            price = self._resolved[key]
        else:
            price = table_price(kind, upstream_model)
            if len(self._resolved) < _CACHE_LIMIT:
                self._resolved[key] = price
        override = self._overrides.get(deployment)
        return price if override is None else configured_price(override, price)

    def estimate_usd(self, ctx: RequestContext, input_tokens: int, max_output_tokens: int) -> float:
        """The most a routed request is expected to cost, before it runs (budget reservations).

        GPU-priced deployments: the moving average of their recent requests' charges.
        """
        meter = self.meters.get(ctx.deployment)
        if meter is not None:
            return meter.average_usd
        price = self.price_of(ctx.deployment, ctx.upstream_model)
        return 0.0 if price is None else price.tokens_usd(input_tokens, max_output_tokens)

    def cost_usd(self, ctx: RequestContext, now_ns: int | None = None) -> float:
        """The real cost once the request is finished (its usage known). The first call stops a
        GPU-priced request's clock (at `now_ns`, default now); later calls give the same answer.
        A response-cache hit costs nothing (`saved_usd` is what it would have cost)."""
        cost = self._cost_usd(ctx, now_ns)
        cache = ctx.cache
        return 0.0 if cache is not None and cache.state == "hit" else cost

    def saved_usd(self, ctx: RequestContext) -> float | None:
        """What a response-cache hit would have cost upstream: its stored usage at the routed
        deployment's token price (0 for GPU-time pricing); None when the request was not a hit."""
        cache = ctx.cache
        if cache is None or cache.state != "hit":
            return None
        usage = ctx.usage
        price = self.price_of(ctx.deployment, ctx.upstream_model)
        if usage is None or price is None:
            return 0.0
        return price.tokens_usd(usage.input_tokens, usage.output_tokens, usage.cached_tokens)

    def _cost_usd(self, ctx: RequestContext, now_ns: int | None) -> float:
        started = ctx.gpu_mark
        if started is not None:
            # Ended on the meter it started on, even if the request moved to another deployment.
            ctx.gpu_mark = None
            meter, mark = started
            ctx.gpu_seconds = meter.end(mark, time.perf_counter_ns() if now_ns is None else now_ns)
            return ctx.gpu_seconds * meter.usd_per_second
        pool = self.meters.get(ctx.deployment)
        if pool is not None:
            return ctx.gpu_seconds * pool.usd_per_second
        usage = ctx.usage
        if usage is None:
            return 0.0
        price = self.price_of(ctx.deployment, ctx.upstream_model)
        if price is None:
            return 0.0
        return price.tokens_usd(usage.input_tokens, usage.output_tokens, usage.cached_tokens)
