"""The part every translated-provider mock shares: an aiohttp server on 127.0.0.1 in a background
thread, the requests it received, and steering by model name.

A translated request cannot carry the OpenAI mock's `"mock": {...}` field, so these mocks are steered
by the model name the gateway sends: ``<name>~key=value~flag`` (e.g. ``claude-mock~status=529``).
Tests reach any model name through a wildcard model (``anthropic/*`` → deployment model ``*``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

JsonObject = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Received:
    """One request as the upstream received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    """Header names lower-cased."""
    body_json: Any
    events_sent: list[bytes] = field(default_factory=list)

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")


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


class LoopbackServer:
    """An aiohttp app on a free loopback port, served from its own thread and event loop."""

    def __init__(self) -> None:
        self.port = 0
        self._received: list[Received] = []
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            self.routes(app)
            runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
            await runner.setup()
            await web.SockSite(runner, sock, backlog=256).start()
            self._runner = runner

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(serve())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"mock-{self.port}", daemon=True)
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

    async def record(self, request: web.Request) -> Received:
        raw = await request.read()
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = None
        received = Received(
            request.method,
            request.path,
            request.query_string,
            {k.lower(): v for k, v in request.headers.items()},
            parsed,
        )
        with self._cond:
            self._received.append(received)
            self._cond.notify_all()
        return received

    def wait_for(self, request_id: str, timeout: float = 5.0) -> Received:
        """The request that carried ``x-request-id: <request_id>``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for received in reversed(self._received):
                    if received.request_id == request_id:
                        return received
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the mock received no request {request_id}")
                self._cond.wait(remaining)


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
        received.events_sent.append(event)
    if "truncate" in options:
        await response.write(b'event: content_block_delta\ndata: {"type": "content_blo')
    await response.write_eof()
    return response
