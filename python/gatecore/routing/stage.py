"""The route stage: resolves the requested model (404 unknown, 403 not allowed for the key), works out
what the request needs of a deployment (routing/fit.py) and picks one."""

from __future__ import annotations

from gatecore.errors import InvalidRequest, ModelNotAllowed, NotFound
from gatecore.request import COMPLETIONS, RequestContext
from gatecore.request.tokens import count_input_tokens
from gatecore.routing.capabilities import JSON_SCHEMA, TOOLS, VISION, describe
from gatecore.routing.engine_load import EnginesBusy
from gatecore.routing.fit import CapabilityMissing, ContextTooLong, Fit
from gatecore.routing.table import ModelRoute, RouteTable, assign, recovered


def fit_of(ctx: RequestContext) -> Fit | None:
    """What the request needs of a deployment, as the route stage worked it out (None: nothing)."""
    fit = ctx.fit
    assert fit is None or isinstance(fit, Fit)
    return fit


def request_tags(value: str | None) -> frozenset[str] | None:
    """`x-gatecore-tags: a, b` → {"a", "b"}; None when absent or empty."""
    if not value:
        return None
    tags = frozenset(t for t in (part.strip() for part in value.split(",")) if t)
    return tags or None


class RouteStage:
    """Resolves the requested model (404 unknown, 403 not allowed for the key) and picks a deployment:
    the model's own (or, for a request too long for it, a context fallback model's), else the first
    fallback model's that has one available."""

    __slots__ = ("table", "tag_routing")

    def __init__(self, table: RouteTable):
        self.table = table
        # Tags are read from requests (`x-gatecore-tags`) only when some deployment has tags.
        self.tag_routing = any(d.tags for r in table.all_routes() for d in r.deployments)

    def __call__(self, ctx: RequestContext) -> None:
        if self.tag_routing:
            ctx.tags = request_tags(ctx.headers.get("x-gatecore-tags"))
        route = self.table.find(ctx.client_model)
        if route is None:
            raise NotFound(
                f"The model '{ctx.client_model[:200]}' does not exist.", code="model_not_found", param="model"
            )
        if ctx.key is not None and not ctx.key.allows(route.name):
            raise ModelNotAllowed(f"This key may not use the model '{ctx.client_model}'.", param="model")
        ctx.route = route
        fit = None
        if ctx.needs or len(ctx.body) + (ctx.max_tokens or 0) > route.roomy:
            # Tools, images, a JSON schema or a body long enough for the context window to matter:
            # only fitting deployments (possibly a context fallback model's), else a 400.
            fit = ctx.fit = request_fit(route, ctx)
            if fit is not None:
                route = fitting_route(route, ctx, fit)
        if ctx.tags is None and route.plain and fit is None:
            # The common case, kept as cheap as a plain weighted pick: no tags, no shedding, nothing
            # special needed, and the strategy's choice healthy.
            single = route.single
            chosen = single if single is not None else route.strategy.choose(route.tiers[0])
            if chosen.model != "*" and (not chosen.breaker.failing or recovered(chosen)):
                ctx.deployment = chosen
                ctx.upstream_model = chosen.model
                ctx.deployment_id = chosen.id
                return
        shed: EnginesBusy | None = None
        try:
            deployment = route.pick(ctx.tags, ctx.body, fit, ctx.client_model)
        except EnginesBusy as busy:
            deployment, shed = None, busy
        if deployment is not None and deployment.model != "*":
            ctx.deployment = deployment
            ctx.upstream_model = deployment.model
            ctx.deployment_id = deployment.id
            return
        for candidate in (route, *route.fallbacks):
            if candidate is not route:
                if ctx.key is not None and not ctx.key.allows(candidate.name):
                    continue
                try:
                    deployment = candidate.pick(ctx.tags, ctx.body, fit, ctx.client_model)
                except EnginesBusy:
                    deployment = None
            upstream_model = None if deployment is None else deployment.upstream_model(ctx.client_model)
            if deployment is not None and upstream_model is not None:
                assign(ctx, deployment, upstream_model)
                return
            deployment = None
        if shed is not None:
            raise shed
        # Every deployment is unavailable (open circuits, failed health checks, ejections, exhausted
        # quotas): rather than refuse, go to the model's own deployments anyway (Envoy's "panic"
        # routing): the client then gets the upstream's real answer.
        candidates = route.ordered(ctx.tags, fit)
        if not candidates:
            raise InvalidRequest(
                f"No deployment of the model '{ctx.client_model}' has the tags requested in x-gatecore-tags"
                + (" and can take this request." if fit is not None else "."),
                code="no_matching_deployment",
            )
        deployment = route.strategy.choose(candidates)
        upstream_model = deployment.upstream_model(ctx.client_model)
        assert upstream_model is not None  # the route matched the name
        assign(ctx, deployment, upstream_model)


def request_fit(route: ModelRoute, ctx: RequestContext) -> Fit | None:
    """The request's Fit, or None when it needs nothing special (counting its prompt's tokens when
    the body is long enough for its context to matter)."""
    tokens = 0
    if ctx.endpoint.generates and len(ctx.body) + (ctx.max_tokens or 0) > route.roomy:
        tokenizer = route.deployments[0].tokenizer if route.deployments else "o200k_base"
        prompt = count_input_tokens(ctx.body, tokenizer)
        ctx.prompt_count = (tokenizer, prompt)  # the limits stage reuses it
        tokens = prompt + (ctx.max_tokens or 1)
        if tokens <= route.roomy:
            tokens = 0
    if not ctx.needs and not tokens:
        return None
    return Fit(ctx.needs, tokens, ctx.client_model)


def fitting_route(route: ModelRoute, ctx: RequestContext, fit: Fit) -> ModelRoute:
    """`route` when one of its deployments fits the request; else the first context fallback model
    the key may use that has one (it becomes the request's route); else a 400 naming what is
    missing."""
    if any(fit.allows(d) for d in route.deployments):
        return route
    capable = [d for d in route.deployments if not d.capabilities_for(fit.client_model).lacking & fit.needs]
    if not capable:
        raise _missing(route, fit)
    for fallback in route.context_fallbacks:
        if ctx.key is not None and not ctx.key.allows(fallback.name):
            continue
        if any(
            fit.allows(d) and d.upstream_model(ctx.client_model) is not None for d in fallback.deployments
        ):
            ctx.route = fallback
            return fallback
    windows = [w for d in capable if (w := d.capabilities_for(fit.client_model).context_window) is not None]
    also = " or its context fallbacks" if route.context_fallbacks else ""
    raise ContextTooLong(
        f"This request needs about {fit.tokens} tokens (its prompt, estimated, plus max_tokens), more "
        f"than the model '{ctx.client_model}'{also} can take (context window {max(windows)} tokens). "
        "Shorten the messages or lower max_tokens.",
        param="prompt" if ctx.endpoint is COMPLETIONS else "messages",
    )


def _missing(route: ModelRoute, fit: Fit) -> CapabilityMissing:
    model = fit.client_model
    offered = 0
    for deployment in route.deployments:
        offered |= fit.needs & ~deployment.capabilities_for(model).lacking
    absent = fit.needs & ~offered
    params = ((TOOLS, "tools"), (VISION, "messages"), (JSON_SCHEMA, "response_format"))
    param = next(name for bit, name in params if (absent or fit.needs) & bit)
    if absent:
        return CapabilityMissing(f"The model '{model}' does not support {describe(absent)}.", param=param)
    return CapabilityMissing(
        f"No single deployment of the model '{model}' supports {describe(fit.needs)} together.", param=param
    )
