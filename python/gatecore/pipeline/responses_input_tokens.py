"""`POST /v1/responses/input_tokens`: the `/v1/responses` chain up to the limits (the request decoded
and translated, previous_response_id replayed, routed, rpm and concurrency counted), then the input
tokens of the translated request, counted with the routed deployment's tokenizer, are the answer."""

from __future__ import annotations

from gatecore.request import RequestContext
from gatecore.request.tokens import count_input_tokens

_JSON_HEADERS = [("content-type", "application/json")]


class CountResponsesTokens:
    """The last stage: answers `{"object": "response.input_tokens", "input_tokens": n}`."""

    __slots__ = ()

    def __call__(self, ctx: RequestContext) -> None:
        deployment = ctx.deployment
        assert deployment is not None  # the route stage ran
        tokens = count_input_tokens(ctx.body, deployment.provider.tokenizer)
        headers = [*_JSON_HEADERS, ("x-request-id", ctx.request_id)]
        body = b'{"object":"response.input_tokens","input_tokens":%d}' % tokens
        ctx.client.response_bytes(200, headers, body)
        ctx.status = 200
