"""Google's Gemini API (generativelanguage.googleapis.com) behind the OpenAI hub format.

POST {base_url}/v1beta/models/{model}:generateContent, or :streamGenerateContent?alt=sse for
streams, authenticated with `x-goog-api-key`. Requests are translated by hub_to_gemini_request.py,
answers by gemini_response_to_hub.py; errors (`{"error": {"code", "message", "status"}}`) here.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from gatecore.config.schema import DEFAULT_BASE_URLS, ProviderConfig
from gatecore.errors import GatewayError, UpstreamError, UpstreamProtocolError
from gatecore.providers.base import StreamDecoder, require_chat
from gatecore.providers.from_hub_request import load_chat
from gatecore.providers.gemini_response_to_hub import GeminiStreamDecoder, openai_completion
from gatecore.providers.hub_to_gemini_request import gemini_request
from gatecore.providers.json_post import JsonPost
from gatecore.providers.upstream_errors import json_object, openai_error_type, unshaped_error
from gatecore.request import RequestContext
from gatecore.upstream.pool import PoolSet
from gatecore.upstream.response import UpstreamResponse
from gatecore.upstream.timeouts import Timeouts

# Google's canonical error status → (OpenAI error type, code).
_ERRORS = {
    "INVALID_ARGUMENT": ("invalid_request_error", "invalid_request"),
    "FAILED_PRECONDITION": ("invalid_request_error", "failed_precondition"),
    "OUT_OF_RANGE": ("invalid_request_error", "invalid_request"),
    "UNAUTHENTICATED": ("authentication_error", "invalid_api_key"),
    "PERMISSION_DENIED": ("permission_error", "permission_denied"),
    "NOT_FOUND": ("not_found_error", "not_found"),
    "RESOURCE_EXHAUSTED": ("rate_limit_error", "rate_limit_exceeded"),
    "INTERNAL": ("api_error", "upstream_error"),
    "UNAVAILABLE": ("api_error", "overloaded"),
    "DEADLINE_EXCEEDED": ("api_error", "upstream_timeout"),
}


class GeminiProvider:
    """Translates OpenAI chat requests to Gemini generateContent and the answers back."""

    def __init__(self, config: ProviderConfig, pools: PoolSet):
        self.name = config.name
        self.tokenizer = config.tokenizer
        headers = {}
        if config.api_key:
            headers["x-goog-api-key"] = config.api_key
        headers.update(config.headers)
        self._post = JsonPost(config.base_url or DEFAULT_BASE_URLS["gemini"], pools, headers)

    async def send(self, ctx: RequestContext, upstream_model: str, timeouts: Timeouts) -> UpstreamResponse:
        require_chat(ctx, "gemini")
        body = orjson.dumps(gemini_request(load_chat(ctx.body)))
        model = quote(upstream_model.removeprefix("models/"), safe="~=")
        path = (
            f"/v1beta/models/{model}:streamGenerateContent?alt=sse"
            if ctx.stream
            else f"/v1beta/models/{model}:generateContent"
        )
        return await self._post.send(ctx, path, body, timeouts)

    def is_stream(self, ctx: RequestContext, response: UpstreamResponse) -> bool:
        # Any 2xx answer to a stream request goes through the decoder, which rejects a body that is
        # not an event stream with an error event.
        return ctx.stream and response.status < 400

    def stream_decoder(self, ctx: RequestContext) -> StreamDecoder | None:
        return GeminiStreamDecoder(ctx.client_model)

    def decode_body(self, ctx: RequestContext, body: bytes) -> bytes:
        response = json_object(body)
        if response is None:
            raise UpstreamProtocolError("The upstream answered something that is not a Gemini response.")
        return orjson.dumps(openai_completion(response, ctx.client_model))

    def decode_error(self, status: int, body: bytes) -> GatewayError:
        doc = json_object(body)
        if doc is None and body.lstrip().startswith(b"["):
            # Some Google front ends wrap the error object in a one-element array.
            wrapped = orjson.loads(body) if body else None
            doc = (
                wrapped[0] if isinstance(wrapped, list) and wrapped and isinstance(wrapped[0], dict) else None
            )
        error = doc.get("error") if doc is not None else None
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            return unshaped_error(status, body)
        state = error.get("status")
        type_, code = _ERRORS.get(
            state if isinstance(state, str) else "", (openai_error_type(status), "upstream_error")
        )
        return UpstreamError(error["message"], status=status, type_=type_, code=code)
