"""The one interface the relays read an upstream response through, whatever produced it."""

from __future__ import annotations

from typing import Protocol


class UpstreamResponse(Protocol):
    """An upstream answer whose head has arrived; the body is read with `read_all` or `next_chunk`."""

    status: int
    content_type: bytes

    async def read_all(self, limit: int) -> bytes:
        """The whole body (at most `limit` bytes, else UpstreamProtocolError)."""
        ...

    def body_if_complete(self) -> bytes | None:
        """The whole body when all of it has already arrived, else None (and nothing is consumed)."""
        ...

    async def next_chunk(self) -> bytes | None:
        """The body bytes received since the last call, waiting for some; None at the end."""
        ...

    def header(self, name: bytes) -> bytes | None:
        """The value of response header `name` (lower-case), or None (for rare reads: error answers)."""
        ...

    def abort(self) -> None:
        """Drop the exchange now (client gone, or an error): the upstream sees its connection close."""
        ...


class WholeAnswer:
    """An upstream answer read whole and held in memory: an error answer kept or amended before it
    is relayed."""

    def __init__(
        self, status: int, content_type: bytes, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ):
        self.status = status
        self.content_type = content_type
        self._body: bytes | None = body
        self._headers = headers or []  # the original answer's headers the relay may still ask for

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self._headers if key == name), None)

    async def read_all(self, limit: int) -> bytes:
        return self.body_if_complete() or b""

    def body_if_complete(self) -> bytes | None:
        body, self._body = self._body, None
        return body

    async def next_chunk(self) -> bytes | None:
        return self.body_if_complete()

    def abort(self) -> None:
        self._body = None


class PeekedAnswer:
    """A streamed answer whose first body bytes were read before it was handed to a relay (to retry
    a stream that broke before anything reached the client): they come first, then the rest."""

    def __init__(self, response: UpstreamResponse, first: bytes):
        self.status = response.status
        self.content_type = response.content_type
        self._response = response
        self._first: bytes | None = first

    def header(self, name: bytes) -> bytes | None:
        return self._response.header(name)

    async def read_all(self, limit: int) -> bytes:
        first, self._first = self._first or b"", None
        return first + await self._response.read_all(max(0, limit - len(first)))

    def body_if_complete(self) -> bytes | None:
        rest = self._response.body_if_complete()
        if rest is None:
            return None
        first, self._first = self._first or b"", None
        return first + rest

    async def next_chunk(self) -> bytes | None:
        first = self._first
        if first is not None:
            self._first = None
            return first
        return await self._response.next_chunk()

    def abort(self) -> None:
        self._first = None
        self._response.abort()
