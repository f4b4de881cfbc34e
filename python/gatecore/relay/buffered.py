"""Relay a whole (non-streamed) upstream body to the client."""

from __future__ import annotations

import time
from typing import Any

from gatecore.api.error_bodies import JSON, render_error
from gatecore.errors import UpstreamProtocolError
from gatecore.providers.base import Provider
from gatecore.providers.upstream_errors import keep_retry_after
from gatecore.relay.answer_head import inference_headers
from gatecore.relay.usage import count_output_tokens, usage_from_body
from gatecore.request import RequestContext, Usage
from gatecore.request.tokens import count_input_tokens, prompt_tokenizer
from gatecore.upstream.response import UpstreamResponse

MAX_RESPONSE_BYTES = 64 * 1024 * 1024


async def relay_buffered(
    proto: Any, ctx: RequestContext, response: UpstreamResponse, provider: Provider, sent_ns: int
) -> None:
    """Read the whole upstream body and answer the client with it in OpenAI's format (the provider
    decodes it, the model name mapped back); an error answer is rendered as an OpenAI error."""
    # Read before the body: once the body is read, the connection (and its parsed head) is reused.
    retry_after = response.header(b"retry-after") if response.status >= 400 else None
    # A small answer has usually arrived whole with its head: taken at once, without the reading
    # coroutines (read_all, next_chunk) it would otherwise go through.
    body = response.body_if_complete()
    if body is None:
        body = await response.read_all(MAX_RESPONSE_BYTES)
    elif len(body) > MAX_RESPONSE_BYTES:
        raise UpstreamProtocolError(f"The upstream response is larger than {MAX_RESPONSE_BYTES} bytes.")
    now = time.perf_counter_ns()
    ctx.upstream_ns = now - sent_ns
    status = response.status
    content_type = response.content_type.decode("latin-1") or "application/json"
    encoder = ctx.encoder  # None for OpenAI clients: the body passes through
    extra: list[tuple[str, str]] = []
    if status >= 400:
        error = keep_retry_after(provider.decode_error(status, body), retry_after)
        extra = error.headers
        if encoder is None:
            status, body = error.status, render_error(error)
        else:
            status, body = encoder.error_answer(error)
        hub_body, content_type = body, JSON
        ctx.error_code = "upstream_error"
        ctx.error_upstream = True
    else:
        hub_body = body = provider.decode_body(ctx, body)  # the OpenAI-format body, for usage
        if ctx.guard is not None:  # the answer's guardrails (a block is the route's own 400)
            hub_body = body = ctx.guard.body(body)
            if ctx.guard.checks_answer:  # external checks, before anything is released
                await ctx.guard.check_answer()
        if encoder is not None:
            body, content_type = encoder.encode_body(body), encoder.content_type
    ctx.status = status
    headers = inference_headers(ctx, content_type, now - ctx.started - ctx.upstream_ns)
    proto.response_bytes(status, [*headers, *extra] if extra else headers, body)
    ctx.first_byte_ns = time.perf_counter_ns()
    if ctx.body_capture is not None:
        ctx.body_capture.add(body)
    if ctx.cache is not None:
        ctx.cache.add(body)
    if status < 400:
        usage, ctx.finish_reason = usage_from_body(hub_body)
        ctx.usage = usage or _counted_usage(ctx, hub_body, provider.tokenizer)


def _counted_usage(ctx: RequestContext, body: bytes, encoding: str) -> Usage:
    return Usage(
        count_input_tokens(ctx.body, prompt_tokenizer(ctx, encoding)),
        count_output_tokens(body, encoding),
        source="counted",
    )
