"""Anthropic's Messages API (POST {base_url}/v1/messages) behind the OpenAI hub format.

Requests are translated by hub_to_anthropic_request.py, streams by anthropic_stream_to_hub.py;
whole answers and errors here. Auth is `x-api-key` with `anthropic-version` (providers[].api_version,
default 2023-06-01: the shape of what gatecore writes and reads; the client's own when the provider's
`forward_headers` lists it); the client's `anthropic-beta` is passed on (providers/forward_headers.py).
An Anthropic client's `thinking`, `output_config`, `context_management` and signed thinking blocks
reach the upstream as sent (`ctx.anthropic_native`), not their hub form.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gatecore.config.schema import DEFAULT_BASE_URLS, ProviderConfig
from gatecore.errors import GatewayError, UpstreamError, UpstreamProtocolError
from gatecore.providers.anthropic_stream_to_hub import (
    ERROR_TYPES,
    FINISH_REASONS,
    AnthropicStreamDecoder,
    anthropic_usage,
)
from gatecore.providers.base import StreamDecoder, require_chat
from gatecore.providers.forward_headers import ForwardHeaders
from gatecore.providers.from_hub_request import load_chat
from gatecore.providers.hub_to_anthropic_request import anthropic_request
from gatecore.providers.json_post import JsonPost
from gatecore.providers.upstream_errors import json_object, openai_error_type, unshaped_error
from gatecore.request import RequestContext
from gatecore.upstream.pool import PoolSet
from gatecore.upstream.response import UpstreamResponse
from gatecore.upstream.timeouts import Timeouts

API_VERSION = "2023-06-01"


class AnthropicProvider:
    """Translates OpenAI chat requests to Anthropic Messages and the answers back."""

    def __init__(self, config: ProviderConfig, pools: PoolSet):
        self.name = config.name
        self.tokenizer = config.tokenizer
        self.default_max_tokens = config.default_max_tokens
        headers: dict[str, str] = {}
        if config.api_key:
            headers["x-api-key"] = config.api_key
        headers.update(config.headers)
        self._forward = ForwardHeaders.of(config)
        # Sent per request unless the client's own version is forwarded (or configured in `headers`).
        self._version: tuple[str, str] | None = None
        if "anthropic-version" not in {name.lower() for name in config.headers}:
            self._version = ("anthropic-version", config.api_version or API_VERSION)
        self._post = JsonPost(config.base_url or DEFAULT_BASE_URLS["anthropic"], pools, headers)

    async def send(self, ctx: RequestContext, upstream_model: str, timeouts: Timeouts) -> UpstreamResponse:
        require_chat(ctx, "anthropic")
        doc = load_chat(ctx.body)
        native = ctx.anthropic_native
        thinking = None
        if native is not None:  # the client's own fields stand in for their hub form
            doc.pop("reasoning_effort", None)
            if "output_config" in native.members:
                doc.pop("response_format", None)
            thinking = native.thinking
        request, _ = anthropic_request(doc, upstream_model, self.default_max_tokens, ctx.stream, thinking)
        if native is not None:
            request.update((name, orjson.Fragment(raw)) for name, raw in native.members.items())
        extra = self._forward.values(ctx)
        version = self._version
        if version is not None and not any(name == "anthropic-version" for name, _ in extra):
            extra.append(version)
        return await self._post.send(ctx, "/v1/messages", orjson.dumps(request), timeouts, extra)

    def is_stream(self, ctx: RequestContext, response: UpstreamResponse) -> bool:
        # Any 2xx answer to a stream request goes through the decoder, which rejects a body that is
        # not an event stream with an error event the client's stream reader understands.
        return ctx.stream and response.status < 400

    def stream_decoder(self, ctx: RequestContext) -> StreamDecoder | None:
        return AnthropicStreamDecoder(ctx.client_model, _json_mode(ctx))

    def decode_body(self, ctx: RequestContext, body: bytes) -> bytes:
        message = json_object(body)
        if message is None or message.get("type") != "message":
            raise UpstreamProtocolError("The upstream answered something that is not an Anthropic message.")
        return orjson.dumps(openai_completion(message, ctx.client_model, _json_mode(ctx)))

    def decode_error(self, status: int, body: bytes) -> GatewayError:
        doc = json_object(body)
        error = doc.get("error") if doc is not None else None
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            return unshaped_error(status, body)
        kind = error.get("type")
        known = ERROR_TYPES.get(kind) if isinstance(kind, str) else None
        type_, code = known[1:] if known is not None else (openai_error_type(status), "upstream_error")
        return UpstreamError(error["message"], status=status, type_=type_, code=code)


def openai_completion(message: dict[str, Any], model: str, json_tool: bool) -> dict[str, Any]:
    """An Anthropic Message as an OpenAI chat.completion."""
    texts: list[str] = []
    reasoning: list[str] = []
    signatures: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking") or ""))
            if isinstance(block.get("signature"), str):
                signatures.append(block["signature"])
        elif kind == "tool_use" and json_tool:
            texts.append(orjson.dumps(block.get("input") or {}).decode())
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": arguments},
                }
            )
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if reasoning:
        reply["reasoning_content"] = "".join(reasoning)
    if len(signatures) == 1:  # a signature covers its own block: blocks joined keep none
        reply["reasoning_signature"] = signatures[0]
    if calls:
        reply["tool_calls"] = calls
    finish = FINISH_REASONS.get(message.get("stop_reason") or "end_turn", "stop")
    if json_tool and finish == "tool_calls":
        finish = "stop"
    return {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}],
        "usage": anthropic_usage(message.get("usage") or {}),
    }


def _json_mode(ctx: RequestContext) -> bool:
    """Whether the request asked for JSON output (which anthropic_request made a forced tool)."""
    body = ctx.body
    if b'"response_format"' not in body:
        return False
    if ctx.anthropic_native is not None and "output_config" in ctx.anthropic_native.members:
        return False  # the client's own output_config went upstream: no forced tool
    fmt = load_chat(body).get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")
