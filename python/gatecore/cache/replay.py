"""A hit's answer to the client: the stored writes, whole or as the stream they were, with the
answer's own head (no upstream was called, so no deployment or attempts header)."""

from __future__ import annotations

import asyncio
import time

from granian._granian import RSGIProtocolClosed as ProtocolClosed

from gatecore.cache.entry import CachedAnswer
from gatecore.request import RequestContext, Usage

_HIT = ("x-gatecore-cache", "hit")
_MAX_GAP_S = 10.0


async def replay(
    ctx: RequestContext, entry: CachedAnswer, extra: tuple[tuple[str, str], ...] = (), paced: bool = False
) -> None:
    """Answer `ctx` with `entry` (`extra` headers added) and fill what the recorders read (status,
    usage, finish reason). `paced`: a stream's writes keep the original's gaps between them."""
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
    if not entry.stream:
        body = entry.parts[0] if len(entry.parts) == 1 else b"".join(entry.parts)
        proto.response_bytes(200, headers, body)
        ctx.first_byte_ns = time.perf_counter_ns()
        if capture is not None:
            capture.add(body)
        return
    headers.append(("cache-control", "no-cache"))
    transport = proto.response_stream(200, headers)
    gaps = entry.gaps_ms if paced and len(entry.gaps_ms) == len(entry.parts) - 1 else None
    try:
        for i, part in enumerate(entry.parts):
            if gaps is not None and i and gaps[i - 1] > 0:
                await asyncio.sleep(min(gaps[i - 1] / 1000, _MAX_GAP_S))
            await transport.send_bytes(part)
            if not ctx.first_byte_ns:
                ctx.first_byte_ns = time.perf_counter_ns()
            if capture is not None:
                capture.add(part)
        ctx.streamed_events = len(entry.parts)
    except ProtocolClosed:
        ctx.client_gone = True
        ctx.status = 499
    finally:
        transport = None  # granian ends the response when the transport is freed
