"""A hit's answer to the client: the stored writes, whole or as the stream they were, with the
answer's own head (no upstream was called, so no deployment or attempts header)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from granian._granian import RSGIProtocolClosed as ProtocolClosed

from gatecore.cache.entry import CachedAnswer
from gatecore.request import RequestContext, Usage

_HIT = ("x-gatecore-cache", "hit")
_MAX_GAP_S = 10.0


def replay(
    ctx: RequestContext, entry: CachedAnswer, extra: tuple[tuple[str, str], ...] = (), paced: bool = False
) -> Awaitable[None] | None:
    """Answer `ctx` with `entry` (`extra` headers added) and fill what the recorders read (status,
    usage, finish reason): at once (None), or, for a stream whose writes keep the original's gaps
    between them (`paced`), the awaitable that sends them."""
    overhead = time.perf_counter_ns() - ctx.started
    ctx.overhead_ns = overhead
    headers = [
        ("content-type", entry.content_type),
        ("x-request-id", ctx.request_id),
        ("x-gatecore-overhead-ms", f"{overhead / 1e6:.3f}"),
        _HIT,
        *extra,
    ]
    if ctx.limits is not None:
        headers += ctx.limits.headers()
    if ctx.timing is not None:
        headers.append(ctx.timing.header(None))  # all of it gatecore's: no upstream was called
    ctx.status = 200
    ctx.usage = Usage(entry.input_tokens, entry.output_tokens, source="cache")
    ctx.finish_reason = entry.finish_reason
    proto = ctx.client
    capture = ctx.body_capture
    parts = entry.parts
    if entry.stream:
        headers.append(("cache-control", "no-cache"))
        ctx.streamed_events = len(parts)
        gaps = entry.gaps_ms if paced and len(entry.gaps_ms) == len(parts) - 1 else None
        if gaps is not None and any(gaps):
            return _paced(ctx, proto, headers, parts, gaps)
    # Whole, or a stream sent all at once: its writes would only follow each other on the socket,
    # so they go out as one body (the same bytes and events, as the relay sends a stream that had
    # arrived whole).
    body = parts[0] if len(parts) == 1 else b"".join(parts)
    proto.response_bytes(200, headers, body)
    ctx.first_byte_ns = time.perf_counter_ns()
    if capture is not None:
        capture.add(body)
    return None


async def _paced(
    ctx: RequestContext, proto: Any, headers: list[tuple[str, str]], parts: list[bytes], gaps: list[int]
) -> None:
    """A stream's writes one by one, each after the gap the original had before it."""
    capture = ctx.body_capture
    transport = proto.response_stream(200, headers)
    try:
        for i, part in enumerate(parts):
            if i and gaps[i - 1] > 0:
                await asyncio.sleep(min(gaps[i - 1] / 1000, _MAX_GAP_S))
            await transport.send_bytes(part)
            if not ctx.first_byte_ns:
                ctx.first_byte_ns = time.perf_counter_ns()
            if capture is not None:
                capture.add(part)
    except ProtocolClosed:
        ctx.client_gone = True
        ctx.status = 499
    finally:
        transport = None  # granian ends the response when the transport is freed
