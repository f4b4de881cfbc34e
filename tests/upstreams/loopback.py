"""Steering by model name, for the anthropic, gemini, azure and mistral mocks (on mock_server.py's
base), and the SSE writer they share.

A translated request cannot carry the OpenAI mock's `"mock": {...}` field, so these mocks are steered
by the model name the gateway sends: ``<name>~key=value~flag`` (e.g. ``claude-mock~status=529``).
Tests reach any model name through a wildcard model (``anthropic/*`` → deployment model ``*``).
"""

from __future__ import annotations

from aiohttp import web

from .mock_server import JsonObject, MockServer, RecordedRequest

__all__ = ["JsonObject", "LoopbackServer", "Received", "send_events", "steering", "words"]

# What these mocks record of a request (one type for every mock).
Received = RecordedRequest


def steering(model: str) -> tuple[str, dict[str, str]]:
    """``name~k=v~flag`` → ``(name, {"k": "v", "flag": ""})``."""
    name, *parts = model.split("~")
    options = {}
    for part in parts:
        key, _, value = part.partition("=")
        options[key] = value
    return name, options


def words(text: str) -> list[str]:
    """Text pieces a stream sends; joined they give ``text`` back."""
    pieces = text.split(" ")
    return [p if i == 0 else " " + p for i, p in enumerate(pieces)]


class LoopbackServer(MockServer):
    """Base of the mocks steered by model name: subclasses define `routes(app)`."""

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def add_routes(self, app: web.Application) -> None:
        self.routes(app)


async def send_events(
    request: web.Request, received: Received, events: list[bytes], options: dict[str, str], content_type: str
) -> web.StreamResponse:
    """Stream ``events`` (each a complete SSE event) with the steering that breaks streams applied:
    ``cut=N`` writes N events then cuts the connection, ``truncate`` ends with half an event,
    ``ctype=...`` sets another content type."""
    response = web.StreamResponse(headers={"Content-Type": options.get("ctype") or content_type})
    await response.prepare(request)
    cut = int(options["cut"]) if "cut" in options else None
    for i, event in enumerate(events):
        if cut is not None and i == cut:
            assert request.transport is not None
            request.transport.abort()
            return response
        await response.write(event)
        received.events.append(event)
    if "truncate" in options:
        await response.write(b'event: content_block_delta\ndata: {"type": "content_blo')
    await response.write_eof()
    return response
