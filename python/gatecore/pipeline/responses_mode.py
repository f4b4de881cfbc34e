"""The Responses route's post-route stage: what the routed deployment's provider says about Responses.

Its `unsupported_tools: reject` turns the built-in tools the translation dropped into a 400 naming the
first one (`tools[3].type`); the default drops them (named in `x-gatecore-dropped-tools`).
Only the `/v1/responses` chain has this stage.
"""

from __future__ import annotations

from gatecore.config.schema import ProviderConfig
from gatecore.errors import InvalidRequest
from gatecore.request import RequestContext
from gatecore.translate.hub_stream_to_responses import ResponsesEncoder


class ResponsesMode:
    """Refuses dropped tools for providers that say so."""

    __slots__ = ("reject",)

    def __init__(self, providers: list[ProviderConfig]):
        self.reject = frozenset(p.name for p in providers if p.unsupported_tools == "reject")

    def __call__(self, ctx: RequestContext) -> None:
        encoder = ctx.encoder
        deployment = ctx.deployment
        if not isinstance(encoder, ResponsesEncoder) or deployment is None:
            return
        dropped = encoder.state.hub.dropped
        if dropped and deployment.provider.name in self.reject:
            index, _, kind = dropped[0].partition(":")
            kind = kind.partition(":")[0]
            raise InvalidRequest(
                f"tools[{index}].type: the built-in tool '{kind}' cannot run on this model's provider.",
                code="unsupported_tool",
                param=f"tools[{index}].type",
            )
