"""How the OpenAI mock writes a stream: event by event with the steered gaps, stalls and cuts, or all
at once; and how it notices a peer that went away."""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from .mock_server import RecordedRequest
from .openai_knobs import MockOptions

_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}


async def write_stream(
    request: web.Request, recorded: RecordedRequest, payloads: list[bytes], opts: MockOptions
) -> web.StreamResponse:
    """Write each payload as a ``data:`` event, applying ``cut_after``, ``idle_after``, ``gap_ms`` and
    ``tail_gap_ms``."""
    response = web.StreamResponse(
        status=200,
        headers={
            **_SSE_HEADERS,
            "Content-Type": opts.content_type or _SSE_HEADERS["Content-Type"],
            **dict(opts.headers),
        },
    )
    recorded.status = 200
    closing(response, opts)
    await response.prepare(request)
    tail = _tail_start(payloads) if opts.tail_gap_ms is not None else len(payloads)
    for i, payload in enumerate(payloads):
        if opts.cut_after is not None and i >= opts.cut_after:
            await _abort(request, recorded)
        gap_ms = opts.gap_ms if i < tail else opts.tail_gap_ms
        if opts.idle_after is not None and i == opts.idle_after and opts.idle_ms:
            await asyncio.sleep(opts.idle_ms / 1000)
        elif i and gap_ms:
            await asyncio.sleep(gap_ms / 1000)
        try:
            await response.write(b"data: " + payload + b"\n\n")
        except ConnectionResetError:
            # The peer went away between two events.
            mark_disconnected(recorded)
            return response
        recorded.events.append(payload)
        recorded.event_times.append(time.monotonic())
    await response.write_eof()
    return response


def _tail_start(payloads: list[bytes]) -> int:
    """Where the events after the last content delta start: the finish chunk, the usage chunk,
    ``[DONE]`` (an engine sends them together with, or right after, its last token)."""
    for i, payload in enumerate(payloads):
        if payload == b"[DONE]":
            return i
        try:
            choices = json.loads(payload).get("choices")
        except ValueError:
            continue
        if choices == [] or any(isinstance(c, dict) and c.get("finish_reason") for c in choices or ()):
            return i
    return len(payloads)


def whole_stream(recorded: RecordedRequest, payloads: list[bytes], opts: MockOptions) -> web.Response:
    """Every event of a stream in one body with a Content-Length (``all_at_once``): no chunking."""
    recorded.status = 200
    recorded.events.extend(payloads)
    recorded.event_times.extend([time.monotonic()] * len(payloads))
    return web.Response(
        status=200,
        body=b"".join(b"data: " + payload + b"\n\n" for payload in payloads),
        headers={
            **_SSE_HEADERS,
            "Content-Type": opts.content_type or _SSE_HEADERS["Content-Type"],
            **dict(opts.headers),
        },
    )


async def _abort(request: web.Request, recorded: RecordedRequest) -> None:
    # Give the events already written a moment to leave the socket buffer, then reset the connection
    # without the terminating chunk; the handler is then cancelled by aiohttp.
    await asyncio.sleep(0.05)
    recorded.aborted = True
    transport = request.transport
    if transport is not None:
        transport.abort()
    await asyncio.sleep(3600)


def mark_disconnected(recorded: RecordedRequest) -> None:
    """Note that the peer left before the answer ended (not when the mock cut it itself)."""
    if not recorded.aborted and not recorded.disconnected.is_set():
        recorded.disconnected_at = time.monotonic()
        recorded.disconnected.set()


def closing(response: web.StreamResponse, opts: MockOptions) -> web.StreamResponse:
    """The response, answered with ``Connection: close`` (and the connection closed) when asked."""
    if opts.close:
        response.force_close()
    return response
