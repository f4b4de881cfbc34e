"""Steering by script, for the ollama, bedrock, cohere, tgi and triton mocks (on mock_server.py's
base): each answer follows a `Script` the test registers for a request id.

Translating providers rebuild the body, so a steering field in the client's body would not reach the
upstream; the gateway does forward the client's ``x-request-id``, so tests steer by that instead::

    upstream.script(rid, status=429)            # this request gets a 429
    client.chat.completions.create(..., extra_headers={"x-request-id": rid})
    recorded = upstream.wait_for(rid)           # what the upstream received
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .mock_server import JsonObject, MockServer, RecordedRequest

__all__ = ["JsonObject", "RecordedRequest", "Script", "ScriptedUpstream", "last_user_text", "split_words"]


@dataclass(frozen=True)
class Script:
    """How the mock answers one request (every field optional)."""

    status: int | None = None
    """Answer this error status with the provider's own error body."""
    error: Any = None
    """The error body (JSON) instead of the mock's default for `status`."""
    error_type: str | None = None
    """Provider-specific error type (Bedrock: the x-amzn-ErrorType header)."""
    retry_after: str | None = None
    """With `status`: a Retry-After header on the error answer (mocks that support it: bedrock)."""
    content: str | None = None
    """The reply text instead of ``"mock: " + <last user text>``."""
    tool_calls: list[tuple[str, JsonObject]] = field(default_factory=list)
    """Tool calls to answer with: ``(name, arguments)``; the reply text is then empty."""
    finish: str | None = None
    """The provider's own finish/stop reason to report."""
    content_type: str | None = None
    """The Content-Type of a (streamed) answer."""
    cut_after: int | None = None
    """Stream: write that many frames, then abort the connection."""
    gap_ms: int = 0
    """Stream: pause between frames."""
    corrupt: str | None = None
    """Stream: a provider-specific malformation ("bad_json", "bad_crc", "no_end", "error_event", ...)."""


def last_user_text(messages: list[Any]) -> str:
    """The text of the last user message, from string or part-list content."""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(p.get("text", "") for p in content if isinstance(p, dict) and "text" in p)
    return ""


def split_words(text: str) -> list[str]:
    """Stream pieces of `text` (word plus trailing space); their concatenation is `text`."""
    pieces = [word + " " for word in text.split(" ")]
    pieces[-1] = pieces[-1][:-1]
    return [p for p in pieces if p] or [""]


class ScriptedUpstream(MockServer):
    """Base of the scripted provider mocks: scripts by request id. Subclasses add routes."""

    thread_name = "scripted-mock"
    raw_paths = True  # Bedrock's model ids are percent-encoded in the path; tests check it as sent

    def __init__(self) -> None:
        super().__init__()
        self._scripts: dict[str, Script] = {}
        # The engine's health endpoint (each mock registers its own path): answered with this status,
        # counted in `health_hits`, never recorded as a request.
        self.health_status = 200
        self.health_hits = 0

    async def health(self, request: web.Request) -> web.Response:
        self.health_hits += 1
        return web.json_response(
            {"status": "ok" if self.health_status < 300 else "down"}, status=self.health_status
        )

    def script(self, request_id: str, **options: Any) -> None:
        """Steer the answer to the request carrying ``x-request-id: request_id``."""
        with self._cond:
            self._scripts[request_id] = Script(**options)

    def script_for(self, recorded: RecordedRequest) -> Script:
        with self._cond:
            return self._scripts.get(recorded.request_id or "", Script())

    async def stream_frames(
        self,
        request: web.Request,
        recorded: RecordedRequest,
        script: Script,
        content_type: str,
        frames: list[bytes],
    ) -> web.StreamResponse:
        """Write `frames` one write each (after `gap_ms`), or cut the connection after `cut_after`."""
        response = web.StreamResponse(
            status=200, headers={"Content-Type": script.content_type or content_type}
        )
        recorded.status = 200
        await response.prepare(request)
        try:
            for i, frame in enumerate(frames):
                if script.cut_after is not None and i >= script.cut_after:
                    await asyncio.sleep(0.05)
                    recorded.aborted = True
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                if i and script.gap_ms:
                    await asyncio.sleep(script.gap_ms / 1000)
                await response.write(frame)
                recorded.events.append(frame)
                recorded.event_times.append(time.monotonic())
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            recorded.disconnected.set()
            raise
        finally:
            recorded.finished.set()
        return response
