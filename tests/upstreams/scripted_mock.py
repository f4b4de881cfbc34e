"""The shared machinery of the ollama, bedrock, cohere, tgi and triton mocks: an aiohttp server on 127.0.0.1 in a background thread,
every request recorded, and each answer steered by a `Script` the test registers for a request id.

Translating providers rebuild the body, so a steering field in the client's body would not reach the
upstream; the gateway does forward the client's ``x-request-id``, so tests steer by that instead::

    upstream.script(rid, status=429)            # this request gets a 429
    client.chat.completions.create(..., extra_headers={"x-request-id": rid})
    recorded = upstream.wait_for(rid)           # what the upstream received
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from .openai_mock import RecordedRequest

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Script:
    """How the mock answers one request (every field optional)."""

    status: int | None = None
    """Answer this error status with the provider's own error body."""
    error: Any = None
    """The error body (JSON) instead of the mock's default for `status`."""
    error_type: str | None = None
    """Provider-specific error type (Bedrock: the x-amzn-ErrorType header)."""
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


class ScriptedUpstream:
    """Base of the provider mocks: lifecycle, recording and scripts. Subclasses add routes."""

    thread_name = "scripted-mock"

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self._requests: list[RecordedRequest] = []
        self._scripts: dict[str, Script] = {}
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            self.add_routes(app)
            runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            self._runner = runner

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(serve())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"{self.thread_name}-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("mock upstream failed to start")

    def stop(self) -> None:
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        if runner is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- steering and what the tests read -----------------------------------------------------------

    def script(self, request_id: str, **options: Any) -> None:
        """Steer the answer to the request carrying ``x-request-id: request_id``."""
        with self._cond:
            self._scripts[request_id] = Script(**options)

    def script_for(self, recorded: RecordedRequest) -> Script:
        with self._cond:
            return self._scripts.get(recorded.request_id or "", Script())

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._cond:
            return list(self._requests)

    def find(self, predicate: Callable[[RecordedRequest], bool], timeout: float = 5.0) -> RecordedRequest:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for recorded in reversed(self._requests):
                    if predicate(recorded):
                        return recorded
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the mock upstream received no matching request")
                self._cond.wait(remaining)

    def wait_for(self, request_id: str, timeout: float = 5.0) -> RecordedRequest:
        return self.find(lambda r: r.request_id == request_id, timeout)

    def received(self, request_id: str) -> bool:
        return any(r.request_id == request_id for r in self.requests)

    # -- for the subclasses' handlers ---------------------------------------------------------------

    async def record(self, request: web.Request) -> RecordedRequest:
        body = await request.read()
        try:
            parsed: Any = json.loads(body.decode("utf-8"))
        except ValueError:
            parsed = None
        recorded = RecordedRequest(
            method=request.method,
            path=request.raw_path.split("?")[0],
            query=request.query_string,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            body_json=parsed,
            received_at=time.monotonic(),
        )
        with self._cond:
            self._requests.append(recorded)
            self._cond.notify_all()
        return recorded

    @staticmethod
    def json_answer(
        recorded: RecordedRequest, status: int, obj: Any, headers: dict[str, str] | None = None
    ) -> web.Response:
        recorded.status = status
        recorded.response_json = obj
        recorded.finished.set()
        return web.Response(
            status=status,
            body=json.dumps(obj).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )

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
