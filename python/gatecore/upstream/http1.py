"""A lean HTTP/1.1 client connection on `asyncio.Protocol`; framing is parsed by `_core.Http1Parser`.

One connection carries one exchange at a time. While an exchange is in flight the connection is
also its `UpstreamResponse`: the relays read the body from it directly, with no queue or task in
between. When the body is complete the connection goes back to its pool (keep-alive) or closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from gatecore._core import Http1Parser
from gatecore.errors import (
    GatewayError,
    UpstreamProtocolError,
    UpstreamStreamError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from gatecore.upstream.deadlines import DeadlineSweeper
from gatecore.upstream.timeouts import Timeouts


class StaleConnection(Exception):
    """A reused keep-alive connection closed before any byte of the answer: safe to resend."""


class Http1Connection(asyncio.Protocol):
    """One keep-alive connection to an upstream origin."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        release: Callable[[Http1Connection], None],
        sweeper: DeadlineSweeper,
    ):
        self._loop = loop
        self._release = release
        self._sweeper = sweeper
        self.due = 0.0  # when the current wait times out (loop time)
        self._phase = ""  # which timeout that is, and its configured seconds, for the error message
        self._phase_seconds = 0.0
        self._transport: asyncio.Transport | None = None
        self._parser = Http1Parser()
        self._chunks: list[bytes] = []
        self._waiter: asyncio.Future[None] | None = None
        self._error: GatewayError | None = None
        self._timeouts: Timeouts | None = None
        self._deadline = 0.0
        self._received = False
        self._in_use = False
        self.closed = False
        self.reused = False
        self.status = 0
        self.content_type = b""

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self._in_use or self._parser.complete:
            # Bytes no request asked for (the connection idles in its pool, or the answer is
            # already whole): never parse them as the next answer, which a misbehaving or hostile
            # upstream could otherwise hand to the next client. Close; the pool skips it.
            self.closed = True
            if self._transport is not None:
                self._transport.close()
            return
        self._received = True
        try:
            body = self._parser.feed(data)
        except ValueError as exc:
            self._error = UpstreamProtocolError(f"The upstream sent invalid HTTP: {exc}.")
            self.abort()
            return
        if body:
            self._chunks.append(body)
        self._wake()

    def eof_received(self) -> bool | None:
        self._parser.feed_eof()
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._parser.complete:
            self._parser.feed_eof()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # the exchange

    def send(self, head: bytes, body: bytes, timeouts: Timeouts) -> None:
        """Write one request; the answer is then read with `read_head` and the body methods."""
        assert self._transport is not None
        self._in_use = True
        self._timeouts = timeouts
        self._deadline = self._loop.time() + timeouts.total
        self._received = False
        if len(body) < 65536:
            self._transport.write(head + body)
        else:
            self._transport.writelines((head, body))

    async def read_head(self) -> None:
        """Wait for the status line and headers (first-byte timeout)."""
        parser = self._parser
        assert self._timeouts is not None
        while not parser.head_complete:
            if self._error is not None:
                raise self._error
            if self.closed or parser.truncated:
                if self.reused and not self._received:
                    raise StaleConnection
                raise UpstreamUnreachable("The upstream closed the connection without answering.")
            await self._wait(self._timeouts.first_byte, "first byte")
        status = parser.status
        if not 200 <= status <= 599:
            # 1xx are skipped by the parser; anything else cannot be relayed (granian rejects it).
            self.abort()
            raise UpstreamProtocolError(f"The upstream answered with an invalid status {status}.")
        self.status = status
        self.content_type = parser.content_type

    def header(self, name: bytes) -> bytes | None:
        """The value of response header `name` (lower-case), or None. Builds the header list: for
        rare reads such as an error answer's type header, not per request."""
        for key, value in self._parser.headers:
            if key == name:
                return value
        return None

    def body_if_complete(self) -> bytes | None:
        if not self._parser.complete:
            return None
        data = self._take_chunks()
        self._finish()
        return data

    def _take_chunks(self) -> bytes:
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        return data

    async def next_chunk(self) -> bytes | None:
        while True:
            if self._chunks:
                return self._take_chunks()
            if self._parser.complete:
                self._finish()
                return None
            if self._error is not None:
                raise self._error
            if self.closed or self._parser.truncated:
                raise UpstreamStreamError("The upstream closed the connection before the response ended.")
            assert self._timeouts is not None
            await self._wait(self._timeouts.idle, "idle")

    async def read_all(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while (chunk := await self.next_chunk()) is not None:
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                self.abort()
                raise UpstreamProtocolError(f"The upstream response is larger than {limit} bytes.")
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def abort(self) -> None:
        self._in_use = False
        if self._transport is not None and not self.closed:
            self._transport.abort()
        self.closed = True

    async def _wait(self, timeout: float, phase: str) -> None:
        due = self._loop.time() + timeout
        if due > self._deadline:
            assert self._timeouts is not None
            due, phase, timeout = self._deadline, "total", self._timeouts.total
        self.due = due
        self._phase = phase
        self._phase_seconds = timeout
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiter = waiter
        self._sweeper.add(self)
        try:
            await waiter
        except UpstreamTimeout:
            self.abort()
            raise
        finally:
            self._sweeper.discard(self)
            # Break the future → exception → traceback → this frame cycle, so nothing the caller's
            # frames hold (the client transport among them) waits for the cyclic GC to be freed.
            self._waiter = None
            del waiter

    def expire(self) -> None:
        """The current wait's deadline passed (called by the DeadlineSweeper)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            message = f"The upstream timed out ({self._phase} timeout, {self._phase_seconds:g} s)."
            waiter.set_exception(UpstreamTimeout(message))

    def _finish(self) -> None:
        if not self._in_use:
            return
        self._in_use = False
        if self._parser.keep_alive and not self.closed:
            self._parser.reset()
            self._release(self)
        else:
            self.closed = True
            if self._transport is not None:
                self._transport.close()
