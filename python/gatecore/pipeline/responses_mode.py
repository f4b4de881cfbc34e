"""The Responses route's post-route stage: what the routed deployment's provider says about Responses.

A provider that speaks Responses natively (`responses: native`, config/schema.py's `responses_native`)
gets the client's request as it is, built-in tools included. For the others the translation dropped
the built-in tools: the default names them in `x-gatecore-dropped-tools`; `unsupported_tools: reject`
makes them a 400 naming the first one (`tools[3].type`). Only the `/v1/responses` chain has this stage.
"""

from __future__ import annotations

from gatecore.config.schema import ProviderConfig, responses_native
from gatecore.errors import InvalidRequest
from gatecore.request import RequestContext
from gatecore.translate.hub_stream_to_responses import ResponsesEncoder

DROPPED_TOOLS_HEADER = "x-gatecore-dropped-tools"


class ResponsesMode:
    """Names or refuses the dropped tools, by the routed deployment's provider."""

    __slots__ = ("native", "reject")

    def __init__(self, providers: list[ProviderConfig]):
        self.native = frozenset(p.name for p in providers if responses_native(p))
        self.reject = frozenset(p.name for p in providers if p.unsupported_tools == "reject")

    def __call__(self, ctx: RequestContext) -> None:
        encoder = ctx.encoder
        deployment = ctx.deployment
        if not isinstance(encoder, ResponsesEncoder) or deployment is None:
            return
        dropped = encoder.state.hub.dropped
        provider = deployment.provider.name
        if not dropped or provider in self.native:
            return
        if provider in self.reject:
            index, _, kind = dropped[0].partition(":")
            kind = kind.partition(":")[0]
            raise InvalidRequest(
                f"tools[{index}].type: the built-in tool '{kind}' cannot run on this model's provider.",
                code="unsupported_tool",
                param=f"tools[{index}].type",
            )
        ctx.answer_headers = [(DROPPED_TOOLS_HEADER, ",".join(d.partition(":")[2] for d in dropped)[:1000])]
