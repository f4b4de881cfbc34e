"""The capability filter: a request that needs tools, image input, a JSON schema or a long context
goes only to deployments that can take it, else to a `context_fallbacks` model, else it is refused
with a 400 that names what is missing.

Long context is judged on an estimate: the prompt counted with the model's tokenizer (the Rust
counter the limits use) plus max_tokens. Counting costs a parse of the body, so it happens only when
the body is longer (in bytes, plus max_tokens) than the smallest known context window of the model
and its fallbacks (`ModelRoute.roomy`): a token is at least one byte of text, so a shorter body fits
everywhere whatever it holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatecore.errors import InvalidRequest
from gatecore.relay.usage import count_input_tokens
from gatecore.request import COMPLETIONS, EMBEDDINGS, RequestContext
from gatecore.routing.capabilities import JSON_SCHEMA, TOOLS, VISION, describe

if TYPE_CHECKING:
    from gatecore.routing.deployment import Deployment
    from gatecore.routing.table import ModelRoute


class CapabilityMissing(InvalidRequest):
    """No deployment of the model can do what the request needs (400)."""

    code = "capability_not_supported"


class ContextTooLong(InvalidRequest):
    """The request is longer than every context window it could go to (400, OpenAI's code)."""

    code = "context_length_exceeded"


class Fit:
    """What one request needs of a deployment: capability bits, and the tokens its context window
    must hold (0: not counted, as the request fits every known window)."""

    __slots__ = ("client_model", "needs", "tokens")

    def __init__(self, needs: int, tokens: int, client_model: str):
        self.needs = needs
        self.tokens = tokens
        self.client_model = client_model

    def allows(self, deployment: Deployment) -> bool:
        return deployment.capabilities_for(self.client_model).fits(self.needs, self.tokens)


def request_fit(route: ModelRoute, ctx: RequestContext) -> Fit | None:
    """The request's Fit, or None when it needs nothing special (counting its prompt's tokens when
    the body is long enough for its context to matter)."""
    tokens = 0
    if ctx.endpoint is not EMBEDDINGS and len(ctx.body) + (ctx.max_tokens or 0) > route.roomy:
        tokenizer = route.deployments[0].provider.tokenizer if route.deployments else "o200k_base"
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
