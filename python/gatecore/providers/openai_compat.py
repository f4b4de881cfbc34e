"""Any OpenAI-compatible upstream: OpenAI, vLLM, SGLang, llama.cpp, Ollama /v1, TGI /v1, Groq, …

The client's body bytes are forwarded as they are; only the top-level `model` is rewritten when the
deployment's name differs, and `stream_options.include_usage` is added to streams so usage can be
accounted (the relay then hides that extra chunk from the client).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson

from gatecore._core import insert_json_member, replace_json_string_field
from gatecore.api.multipart import boundary_of, with_field
from gatecore.config.schema import DEFAULT_BASE_URLS, ProviderConfig, responses_native
from gatecore.errors import GatewayError, InvalidRequest
from gatecore.providers.base import StreamDecoder
from gatecore.providers.forward_headers import ForwardHeaders
from gatecore.providers.upstream_errors import openai_shaped_error
from gatecore.request import CHAT, COMPLETIONS, EMBEDDINGS, RequestContext
from gatecore.request.context import PASSTHROUGH_ENDPOINTS
from gatecore.upstream.pool import Origin, PoolSet
from gatecore.upstream.response import UpstreamResponse
from gatecore.upstream.timeouts import Timeouts

_INCLUDE_USAGE = b'{"include_usage":true}'


class OpenAICompatProvider:
    """Forwards OpenAI-format requests to an OpenAI-compatible base URL."""

    def __init__(self, config: ProviderConfig, pools: PoolSet):
        base_url = config.base_url or DEFAULT_BASE_URLS[config.kind]
        self.name = config.name
        self.tokenizer = config.tokenizer
        self.stream_usage = config.stream_usage
        origin = Origin(base_url)
        self.pool = pools.get(origin)
        base_path = urlsplit(base_url).path.rstrip("/")
        fixed = [f"host: {origin.host_header}", "content-type: application/json", "accept-encoding: identity"]
        if config.api_key:
            fixed.append(f"authorization: Bearer {config.api_key}")
        fixed.extend(f"{name}: {value}" for name, value in config.headers.items())
        self._base_path = base_path
        forward = ForwardHeaders.of(config)
        self._forward = forward if forward else None  # None unless forward_headers is configured
        self._lines = lines = "\r\n".join(fixed)
        # The constant part of every request head, built once per endpoint.
        self._heads = {
            endpoint.name: f"POST {base_path}{endpoint.upstream_path} HTTP/1.1\r\n{lines}\r\n".encode(
                "latin-1"
            )
            for endpoint in (CHAT, COMPLETIONS, EMBEDDINGS, *PASSTHROUGH_ENDPOINTS)
        }
        # `/v1/responses` requests go to the upstream's own Responses API as the client sent them.
        self.responses_native = responses_native(config)
        self._responses_head = f"POST {base_path}/responses HTTP/1.1\r\n{lines}\r\n".encode("latin-1")

    def request_body(self, ctx: RequestContext, upstream_model: str) -> bytes:
        """The client's body as the upstream must get it."""
        body = ctx.body
        if ctx.native_body is not None and self.responses_native:  # a Responses request, passed through
            body = ctx.native_body
            if upstream_model != ctx.client_model:
                body = replace_json_string_field(body, "model", upstream_model) or _reencode(
                    body, model=upstream_model
                )
            return body
        if ctx.endpoint.multipart:  # a form upload: its `model` field is the one to rewrite
            if upstream_model == ctx.client_model:
                return body
            return with_field(body, boundary_of(_content_type(ctx)), "model", upstream_model)
        if upstream_model != ctx.client_model:
            body = replace_json_string_field(body, "model", upstream_model) or _reencode(
                body, model=upstream_model
            )
        if ctx.stream and not ctx.include_usage and self.stream_usage and ctx.endpoint.streams:
            if b'"stream_options"' in body:
                body = _reencode(body, include_usage=True)
            else:
                body = insert_json_member(body, "stream_options", _INCLUDE_USAGE) or body
        return body

    def request_head(self, ctx: RequestContext, upstream_model: str) -> bytes:
        """The request line and constant headers for this request's endpoint."""
        if ctx.native_body is not None and self.responses_native:
            return self._responses_head
        return self._heads[ctx.endpoint.hub.name]

    async def send(self, ctx: RequestContext, upstream_model: str, timeouts: Timeouts) -> UpstreamResponse:
        body = self.request_body(ctx, upstream_model)
        forward = self._forward
        end = forward.lines(ctx) + b"\r\n" if forward is not None else b"\r\n"
        request_head = self.request_head(ctx, upstream_model)
        if ctx.endpoint.multipart:  # the client's content type carries the form's boundary
            request_head = request_head.replace(
                b"content-type: application/json", b"content-type: " + _content_type(ctx).encode("latin-1")
            )
        head = b"%scontent-length: %d\r\nx-request-id: %s\r\n%s" % (
            request_head,
            len(body),
            ctx.request_id.encode("latin-1"),
            end,
        )
        return await self.pool.exchange(ctx, head, body, timeouts)

    def is_stream(self, ctx: RequestContext, response: UpstreamResponse) -> bool:
        return ctx.stream and response.status < 400 and response.content_type.startswith(b"text/event-stream")

    def stream_decoder(self, ctx: RequestContext) -> StreamDecoder | None:
        return None  # already OpenAI SSE: the relay takes the upstream's bytes as they are

    def decode_body(self, ctx: RequestContext, body: bytes) -> bytes:
        if ctx.upstream_model == ctx.client_model:
            return body
        return replace_json_string_field(body, "model", ctx.client_model) or body

    def decode_error(self, status: int, body: bytes) -> GatewayError:
        return openai_shaped_error(status, body)


def _content_type(ctx: RequestContext) -> str:
    # Checked by the decode stage (pipeline/passthrough.py): printable, at most 1024 characters.
    value: str = ctx.headers.get("content-type") if ctx.headers is not None else ""
    return value


def _reencode(body: bytes, *, model: str | None = None, include_usage: bool = False) -> bytes:
    # The slow path, for bodies the byte-level edits cannot handle (a non-string model, an existing
    # stream_options object, nesting past the scanner's depth limit): decode, change, encode.
    # Unknown fields survive; formatting does not.
    try:
        doc = orjson.loads(body)
        if model is not None:
            doc["model"] = model
        if include_usage:
            options = doc.get("stream_options")
            doc["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return orjson.dumps(doc)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):  # e.g. nested deeper than orjson allows
        raise InvalidRequest(
            "The request body is nested too deeply to forward.", code="invalid_body"
        ) from None
