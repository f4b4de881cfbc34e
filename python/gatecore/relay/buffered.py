"""Relay a whole (non-streamed) upstream body to the client."""

from __future__ import annotations

import time
from typing import Any

import orjson

from gatecore.providers.base import Provider
from gatecore.relay.usage import count_input_tokens, count_output_tokens, usage_from_body
from gatecore.request import RequestContext, Usage
from gatecore.server.errors import openai_error_body
from gatecore.server.headers import inference_headers
from gatecore.translate.openai_error import upstream_error_from_body
from gatecore.upstream.response import UpstreamResponse

MAX_RESPONSE_BYTES = 64 * 1024 * 1024


async def relay_buffered(
    proto: Any, ctx: RequestContext, response: UpstreamResponse, provider: Provider, sent_ns: int
) -> None:
    """Read the whole upstream body and answer the client with it (model name mapped back)."""
    body = await response.read_all(MAX_RESPONSE_BYTES)
    now = time.perf_counter_ns()
    ctx.upstream_ns = now - sent_ns
    status = response.status
    content_type = response.content_type.decode("latin-1") or "application/json"
    encoder = ctx.encoder  # None for OpenAI clients: the body passes through
    hub_body = body  # the OpenAI-format body, for usage
    if encoder is not None:
        if status >= 400:
            error = upstream_error_from_body(status, body)
            status, body, content_type = error.status, encoder.error_body(error), "application/json"
            ctx.error_code = "upstream_error"
        else:
            body, content_type = encoder.encode_body(body), encoder.content_type
    elif status >= 400:
        body, content_type = upstream_error_body(status, body, content_type)
        ctx.error_code = "upstream_error"
    elif ctx.upstream_model != ctx.client_model:
        hub_body = body = provider.rewrite_body(body, ctx.client_model)
    ctx.status = status
    proto.response_bytes(
        status, inference_headers(ctx, content_type, now - ctx.started - ctx.upstream_ns), body
    )
    if status < 400:
        ctx.usage = usage_from_body(hub_body) or _counted_usage(ctx, hub_body, provider.tokenizer)


def upstream_error_body(status: int, body: bytes, content_type: str) -> tuple[bytes, str]:
    """The upstream's error body if it is OpenAI-shaped JSON, else the same status wrapped in one."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict | str):
        return body, "application/json"
    text = body[:512].decode("utf-8", "replace").strip()
    message = f"The upstream answered HTTP {status}" + (f": {text}" if text else ".")
    return openai_error_body(message, "upstream_error", "upstream_error"), "application/json"


def _counted_usage(ctx: RequestContext, body: bytes, encoding: str) -> Usage:
    return Usage(
        count_input_tokens(ctx.body, encoding),
        count_output_tokens(body, encoding),
        source="counted",
    )
