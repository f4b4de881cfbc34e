"""What the attempt loop looks at in an answer before a relay gets it, while nothing has reached the
client: a refusal another model may not give (routing/refusals.py), which takes the request to the
model's `context_fallbacks` or `content_policy_fallbacks`.
"""

from __future__ import annotations

from gatecore.errors import GatewayError
from gatecore.relay.buffered import MAX_RESPONSE_BYTES
from gatecore.request import RequestContext
from gatecore.routing.deployment import Deployment
from gatecore.routing.engine_load import EnginesBusy
from gatecore.routing.refusals import CONTENT_POLICY, CONTEXT, REFUSAL_STATUSES, filtered, refusal_of
from gatecore.routing.stage import fit_of
from gatecore.routing.table import ModelRoute, assign
from gatecore.upstream.response import UpstreamResponse

from .retrying import MAX_ERROR_BYTES, StoredAnswer, kept_headers


async def examine(
    ctx: RequestContext, route: ModelRoute, deployment: Deployment, response: UpstreamResponse
) -> tuple[UpstreamResponse, list[ModelRoute]]:
    """For a model with context or content-policy fallbacks: the answer to relay (read whole when it
    had to be looked at) and the models to take the request to instead (empty: relay the answer).
    Reads the body of a refusal status (small error bodies) and, when the model has content-policy
    fallbacks, of a non-streamed 2xx answer (which the buffered relay reads whole anyway)."""
    status = response.status
    provider = deployment.provider
    refusal_status = status in REFUSAL_STATUSES
    if not refusal_status and (
        status >= 300 or not route.content_policy_fallbacks or provider.is_stream(ctx, response)
    ):
        return response, []
    headers = kept_headers(response)
    kind: str | None = None
    if refusal_status:
        body = await response.read_all(MAX_ERROR_BYTES)
        error = provider.decode_error(status, body)
        kind = refusal_of(status, error.code, error.message, body)
    else:
        body = await response.read_all(MAX_RESPONSE_BYTES)
        try:
            if filtered(provider.decode_body(ctx, body)):
                kind = CONTENT_POLICY
        except GatewayError:
            pass  # not a body the provider can decode: the relay answers that
    answer = StoredAnswer(deployment, ctx.upstream_model, response, headers, body)
    if kind == CONTEXT:
        return answer, route.context_fallbacks
    if kind == CONTENT_POLICY:
        return answer, route.content_policy_fallbacks
    return answer, []


def redirect(
    ctx: RequestContext, targets: list[ModelRoute], visited: set[ModelRoute]
) -> tuple[ModelRoute, Deployment] | None:
    """Make the first of `targets` that the key may use, that this request has not been to and that
    has a deployment fitting it the request's route and deployment (returned); None when there is
    none."""
    key = ctx.key
    fit = fit_of(ctx)
    for target in targets:
        if target in visited or (key is not None and not key.allows(target.name)):
            continue
        try:
            deployment = target.pick(ctx.tags, ctx.body, fit)
        except EnginesBusy:
            deployment = None
        if deployment is None:  # every one unavailable: the model's own anyway (panic routing)
            ordered = target.ordered(ctx.tags, fit)
            deployment = ordered[0] if ordered else None
        upstream_model = deployment.upstream_model(ctx.client_model) if deployment is not None else None
        if deployment is None or upstream_model is None:
            continue
        visited.add(target)
        ctx.route = target
        ctx.attempts += 1
        assign(ctx, deployment, upstream_model)
        return target, deployment
    return None
