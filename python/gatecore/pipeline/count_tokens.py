"""`POST /v1/messages/count_tokens`: the chain up to the route, then `{"input_tokens": n}` counted with
the routed deployment's tokenizer is the answer."""

from __future__ import annotations

from gatecore.pipeline.decode import bounded_model
from gatecore.request import RequestContext
from gatecore.translate.anthropic_request_decode import decode_messages_request
from gatecore.translate.anthropic_request_to_hub import openai_chat_request
from gatecore.translate.anthropic_tokens import count_request_tokens

_JSON_HEADERS = [("content-type", "application/json")]


def decode_count_tokens(ctx: RequestContext) -> None:
    """The decode stage: an Anthropic Messages request, with the same 400s as `/v1/messages` for
    what cannot go to the hub format."""
    request, members = decode_messages_request(ctx.body, ctx)
    openai_chat_request(request, members)
    ctx.client_model = bounded_model(request.model)


class CountTokens:
    """The last stage: counts the routed request's input tokens and answers with them."""

    __slots__ = ()

    def __call__(self, ctx: RequestContext) -> None:
        request, _ = decode_messages_request(ctx.body)  # decoded again: this route is not hot
        deployment = ctx.deployment
        assert deployment is not None  # the route stage ran
        tokens = count_request_tokens(request, deployment.provider.tokenizer)
        headers = [*_JSON_HEADERS, ("x-request-id", ctx.request_id)]
        ctx.client.response_bytes(200, headers, b'{"input_tokens":%d}' % tokens)
        ctx.status = 200
