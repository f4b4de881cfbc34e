"""The base of every loopback mock: an aiohttp server on 127.0.0.1 served from its own thread and
event loop, and every request it received recorded for the test to read back.

Subclasses add their provider's routes (`add_routes`) and answer in its wire format; how a test steers
an answer is theirs (openai_mock.py: a `"mock"` body field; loopback.py: the model name;
scripted_mock.py: a script per `x-request-id`; see README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

JsonObject = dict[str, Any]


@dataclass
class RecordedRequest:
    """One request as the upstream received it, and what it did with it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    """Header names lower-cased; the last value wins."""
    body: bytes
    body_json: Any
    """The parsed body, or None when it was not valid JSON."""
    received_at: float
    """time.monotonic() when the request was read."""
    peer_port: int | None = None
    """The client's port: requests with the same one came over the same (kept-alive) connection."""
    status: int | None = None
    response_json: Any = None
    """The JSON body answered (non-streamed answers and errors)."""
    events: list[bytes] = field(default_factory=list)
    """What each stream write sent (the OpenAI mock: the payload of each ``data:`` line)."""
    event_times: list[float] = field(default_factory=list)
    """time.monotonic() right after each event was handed to the socket."""
    aborted: bool = False
    """True when the mock itself cut the connection."""
    disconnected: threading.Event = field(default_factory=threading.Event)
    """Set when the peer closed the connection before the answer was complete."""
    disconnected_at: float | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    """Set when the handler is done (answered, aborted or disconnected)."""

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")

    def event_objects(self) -> list[JsonObject]:
        """The JSON events written, ``[DONE]`` left out."""
        return [json.loads(e) for e in self.events if e != b"[DONE]"]


class MockServer:
    """Lifecycle (``with Mock() as m:``), recording, and waiting for a request."""

    thread_name = "mock"
    client_max_size = 64 * 1024 * 1024
    backlog = 256
    raw_paths = False
    """Record the path as sent (percent-encoding kept) instead of decoded."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        keepalive_timeout: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``keepalive_timeout``: seconds an idle keep-alive connection stays open before the mock
        closes it (aiohttp's default when None). ``ssl_context``: serve https with it."""
        self.host = host
        self.ssl_context = ssl_context
        self.port = 0
        self.keepalive_timeout = keepalive_timeout
        self._requests: list[RecordedRequest] = []
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}"

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve(sock))
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"{self.thread_name}-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            self._thread.join(5)
            sock.close()
            if not self._thread.is_alive():
                loop.close()
            self._loop = self._thread = None
            raise RuntimeError(f"mock upstream failed to start: {failure!r}")

    async def _serve(self, sock: socket.socket) -> None:
        app = web.Application(client_max_size=self.client_max_size)
        self.add_routes(app)
        extra: dict[str, Any] = {}
        if self.keepalive_timeout is not None:
            extra["keepalive_timeout"] = self.keepalive_timeout
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5, **extra)
        await runner.setup()
        await web.SockSite(runner, sock, backlog=self.backlog, ssl_context=self.ssl_context).start()
        self._runner = runner

    def stop(self) -> None:
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        if runner is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_cancel_pending(), loop).result(10)
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

    # -- what the tests read ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._cond:
            return list(self._requests)

    def clear(self) -> None:
        with self._cond:
            self._requests.clear()

    def find(self, predicate: Callable[[RecordedRequest], bool], timeout: float = 5.0) -> RecordedRequest:
        """Wait until a received request satisfies ``predicate`` and return the latest such one."""
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
        """The request that carried header ``x-request-id: <request_id>``."""
        return self.find(lambda r: r.request_id == request_id, timeout)

    def received(self, request_id: str) -> bool:
        return any(r.request_id == request_id for r in self.requests)

    # -- for the subclasses' handlers ------------------------------------------------------------------

    async def record(self, request: web.Request) -> RecordedRequest:
        """Read and record one request (its body parsed as JSON when it is strict UTF-8 JSON)."""
        body = await request.read()
        try:
            # Strict UTF-8 first: json.loads(bytes) would let lone surrogates through; providers do not.
            parsed: Any = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):
            parsed = None
        recorded = RecordedRequest(
            method=request.method,
            path=request.raw_path.split("?")[0] if self.raw_paths else request.path,
            query=request.query_string,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            body_json=parsed,
            received_at=time.monotonic(),
            peer_port=_peer_port(request),
        )
        with self._cond:
            self._requests.append(recorded)
            self._cond.notify_all()
        return recorded

    @staticmethod
    def json_answer(
        recorded: RecordedRequest, status: int, obj: Any, headers: dict[str, str] | None = None
    ) -> web.Response:
        """Answer `obj` as JSON with `status` (and extra headers), recorded as the response."""
        recorded.status = status
        recorded.response_json = obj
        recorded.finished.set()
        return web.Response(
            status=status,
            body=json.dumps(obj).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )


def _peer_port(request: web.Request) -> int | None:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return peer[1] if isinstance(peer, tuple) and len(peer) >= 2 and isinstance(peer[1], int) else None


async def _cancel_pending() -> None:
    """Cancel what the server still runs after its cleanup, such as a TLS handshake in progress, and
    wait for it to unwind, so its transport is closed here and not left for the GC to warn about."""
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
