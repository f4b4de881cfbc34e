"""Relay an upstream SSE stream to the client event by event through the Rust `SseRelay`.

Each upstream read is fed to the relay and whatever events it completes are written to the client at
once: no coalescing, no timers. Each write reads the clock once: the first is the time to first
token, the later ones add their gap since the previous write to the stream's `ChunkGaps`. Usage is
taken from the stream (or counted in Rust when the upstream sent none). A break after the stream
started ends the client's stream with an error event; a client that goes away aborts the upstream
exchange.
"""

from __future__ import annotations

import time
from typing import Any

from granian._granian import RSGIProtocolClosed as ProtocolClosed

from gatecore._core import SseRelay
from gatecore.api.error_bodies import stream_error_event
from gatecore.errors import GatewayError, GuardrailBlocked, UpstreamProtocolError, UpstreamStreamError
from gatecore.providers.base import Provider
from gatecore.relay.answer_head import inference_headers
from gatecore.request import RequestContext, ResponseEncoder, Usage
from gatecore.request.chunk_gaps import ChunkGaps
from gatecore.request.tokens import count_input_tokens, prompt_tokenizer
from gatecore.request.views import AnswerGuard
from gatecore.upstream.response import UpstreamResponse

# An upstream that never ends an event would otherwise make the relay hold ever more memory.
MAX_EVENT_BYTES = 16 * 1024 * 1024


async def relay_stream(
    proto: Any, ctx: RequestContext, response: UpstreamResponse, provider: Provider, sent_ns: int
) -> None:
    """Stream the upstream's events to the client as they arrive."""
    head_ns = time.perf_counter_ns()
    decoder = provider.stream_decoder(ctx)
    # A decoder already writes the client's model name; pass-through events get it from the relay.
    rename = decoder is None and ctx.upstream_model != ctx.client_model
    relay = SseRelay(ctx.client_model if rename else None, not ctx.include_usage, True, provider.tokenizer)
    ctx.status = 200
    whole = response.body_if_complete()
    overhead = sent_ns - ctx.started + time.perf_counter_ns() - head_ns
    encoder = ctx.encoder  # None for OpenAI clients: their events pass through as they are
    # A client encoder names its stream's type (Gemini's default stream is one JSON array).
    content_type = "text/event-stream" if encoder is None else encoder.content_type
    headers = [*inference_headers(ctx, content_type, overhead), ("cache-control", "no-cache")]
    if whole is not None:
        # Every event has already arrived (a short or cached answer): they go out together in one
        # write, exactly as a stream would deliver them, without the per-chunk stream machinery.
        if decoder is not None:
            try:
                whole = decoder.feed(whole) + decoder.finish()
            except GatewayError as exc:
                ctx.error_code = exc.code
                error = _stream_failure(exc)
                if encoder is not None:  # straight to the client's error event, its status kept
                    out = encoder.error_event(error)
                    proto.response_bytes(200, headers, out)
                    _account(ctx, relay, provider, sent_ns, out)
                    return
                whole = stream_error_event(error)
        out = relay.feed(whole) + relay.finish()
        if ctx.guard is not None:  # nothing was sent yet: a block is the route's own 400
            out = ctx.guard.events(out) + ctx.guard.end()
            if ctx.guard.checks_answer:
                await ctx.guard.check_answer()
        if encoder is not None:
            out = _encode_whole(encoder, out, ctx, relay, provider)
        proto.response_bytes(200, headers, out)
        ctx.first_byte_ns = time.perf_counter_ns()
        _account(ctx, relay, provider, sent_ns, out)
        return
    transport = proto.response_stream(200, headers)
    gaps = ctx.chunk_gaps = ChunkGaps()
    capture = ctx.body_capture  # None unless the key opted into body logging
    cache = ctx.cache  # None unless the cache may store this answer
    last = 0  # perf_counter_ns of the previous write
    guard = ctx.guard  # the answer's guardrails (None: none look at answers)
    try:
        while (chunk := await response.next_chunk()) is not None:
            if decoder is not None:
                chunk = decoder.feed(chunk)
            out = relay.feed(chunk)
            if guard is not None and out:
                out = _guarded(guard, out, response)
            if encoder is not None and out:
                out = _encode(encoder, out, response)
            if out:
                await transport.send_bytes(out)
                # One clock read per write: TTFT for the first, the gap since the previous after.
                now = time.perf_counter_ns()
                if last:
                    gaps.add(now - last)
                else:
                    ctx.first_byte_ns = now
                last = now
                if capture is not None:
                    capture.add(out)
                if cache is not None:
                    cache.add(out)
            if relay.held_bytes > MAX_EVENT_BYTES:
                raise UpstreamProtocolError(
                    f"The upstream sent an event larger than {MAX_EVENT_BYTES} bytes."
                )
        tail = relay.finish() if decoder is None else relay.feed(decoder.finish()) + relay.finish()
        if guard is not None:
            tail = guard.events(tail) + guard.end()
            if guard.checks_answer:  # external checks of the answer, before its final events
                await guard.check_answer()
        if encoder is not None:
            tail = encoder.feed(tail) + encoder.finish(_stream_usage(ctx, relay, provider))
        if tail:
            await transport.send_bytes(tail)
            if capture is not None:
                capture.add(tail)
            if cache is not None:
                cache.add(tail)
    except GatewayError as exc:
        ctx.error_code = exc.code
        # A fresh error, never raised: keeping `exc` would tie its traceback, and through it this
        # frame and the client transport, into a cycle, and granian ends the response only when the
        # transport is freed.
        error = _stream_failure(exc)
        try:
            # A partial event the relay still holds was never sent, so the client is at an event boundary.
            event = stream_error_event(error) if encoder is None else encoder.error_event(error)
            await transport.send_bytes(event)
            if capture is not None:
                capture.add(event)
        except ProtocolClosed:
            ctx.client_gone = True
    except ProtocolClosed:
        ctx.client_gone = True
        response.abort()
    finally:
        # granian ends the response when the transport is freed: drop it now, not at the next GC.
        transport = None
        _account(ctx, relay, provider, sent_ns)


def _encode(encoder: ResponseEncoder, out: bytes, response: UpstreamResponse) -> bytes:
    try:
        return encoder.feed(out)
    except GatewayError:
        response.abort()  # the upstream is still sending: stop it before the client hears of it
        raise


def _guarded(guard: AnswerGuard, out: bytes, response: UpstreamResponse) -> bytes:
    try:
        return guard.events(out)
    except GatewayError:
        response.abort()  # blocked: what was held is dropped, the upstream stopped
        raise


def _encode_whole(
    encoder: ResponseEncoder, out: bytes, ctx: RequestContext, relay: SseRelay, provider: Provider
) -> bytes:
    """A whole stream's events in the client's shape, its error event last if the stream was broken."""
    encoded = b""
    try:
        encoded = encoder.feed(out)
        return encoded + encoder.finish(_stream_usage(ctx, relay, provider))
    except GatewayError as exc:
        ctx.error_code = exc.code
        return encoded + encoder.error_event(_stream_failure(exc))


def _stream_failure(exc: GatewayError) -> GatewayError:
    """The error event's error for a stream that broke with `exc`: its message and status (an
    Anthropic client's error type follows the status: 529 overloaded, 429 rate limited)."""
    if isinstance(exc, GuardrailBlocked):  # the client is told it was a guardrail, in its words
        return GuardrailBlocked(exc.message)
    error = UpstreamStreamError(exc.message)
    error.status = exc.status
    return error


def _stream_usage(ctx: RequestContext, relay: SseRelay, provider: Provider) -> Usage:
    """The stream's usage as the upstream reported it, else counted (once per request)."""
    if ctx.usage is None:
        usage = relay.usage
        if usage is not None:
            ctx.usage = Usage(usage[0], usage[1], usage[2], usage[3], "upstream")
        else:
            ctx.usage = Usage(
                count_input_tokens(ctx.body, prompt_tokenizer(ctx, provider.tokenizer)),
                relay.output_tokens(),
                source="counted",
            )
    return ctx.usage


def _account(
    ctx: RequestContext, relay: SseRelay, provider: Provider, sent_ns: int, whole: bytes = b""
) -> None:
    ctx.upstream_ns = time.perf_counter_ns() - sent_ns
    if whole and ctx.body_capture is not None:  # a stream answered in one write
        ctx.body_capture.add(whole)
    if whole and ctx.cache is not None:
        ctx.cache.add(whole)
    ctx.streamed_events = relay.events
    ctx.finish_reason = relay.first_choice_finish_reason
    _stream_usage(ctx, relay, provider)
    if relay.error is not None:
        ctx.error_code = ctx.error_code or "upstream_error_event"
