"""The Gemini routes' decode stages: a `generateContent` request translated into the hub format
(translate/gemini_request_to_hub.py), its answers translated back by the encoder it leaves on the
context; and `countTokens`, whose last stage answers with the count.

The model and the method come from the path (`/v1beta/models/{model}:{method}`): the server puts the
model into `ctx.client_model` before the chain runs, and each method (and stream form) has its own
chain, so these stages read no path.
"""

from __future__ import annotations

import msgspec

from gatecore.errors import InvalidRequest
from gatecore.pipeline.decode import bounded_model
from gatecore.request import RequestContext
from gatecore.request.tokens import count_input_tokens
from gatecore.routing.capabilities import translated_needs
from gatecore.translate.gemini_request_to_hub import decode_count_request, decode_request, openai_chat_request
from gatecore.translate.hub_stream_to_gemini import GeminiEncoder

_JSON_HEADERS = [("content-type", "application/json")]


class DecodeGemini:
    """`:generateContent` (stream False) or `:streamGenerateContent` (`alt=sse` or the JSON array)."""

    __slots__ = ("sse", "stream")

    def __init__(self, stream: bool, sse: bool):
        self.stream = stream
        self.sse = sse

    def __call__(self, ctx: RequestContext) -> None:
        model = bounded_model(ctx.client_model)
        request, members = decode_request(ctx.body)
        doc = openai_chat_request(request, members, model, self.stream)
        ctx.stream = self.stream
        ctx.max_tokens = doc.get("max_tokens")
        ctx.choices = doc.get("n", 1)
        ctx.body = msgspec.json.encode(doc)
        ctx.needs = translated_needs(ctx.body, "tools" in doc)
        config = request.generation_config
        thinking = config.thinking_config if config is not None else None
        thoughts = thinking is not None and thinking.includes_thoughts()
        ctx.encoder = GeminiEncoder(model, ctx.request_id, thoughts, self.stream, self.sse)


def decode_gemini_count(ctx: RequestContext) -> None:
    """`:countTokens`'s decode stage: the same 400s as generateContent for what cannot be translated;
    the hub form of the request it counts goes into `ctx.body`."""
    model = bounded_model(ctx.client_model)
    request = decode_count_request(ctx.body)
    if not request.contents:
        raise InvalidRequest("contents: at least one content is required.", param="contents")
    doc = openai_chat_request(request, {}, model, False)
    ctx.body = msgspec.json.encode(doc)


class GeminiCountTokens:
    """The last stage of `:countTokens`: the routed deployment's tokenizer counts the prompt."""

    __slots__ = ()

    def __call__(self, ctx: RequestContext) -> None:
        deployment = ctx.deployment
        assert deployment is not None  # the route stage ran
        tokens = count_input_tokens(ctx.body, deployment.provider.tokenizer)
        headers = [*_JSON_HEADERS, ("x-request-id", ctx.request_id)]
        ctx.client.response_bytes(200, headers, b'{"totalTokens":%d}' % tokens)
        ctx.status = 200
