"""A raw-socket upstream that speaks broken or odd HTTP, for the tests of how the gateway takes
malformed upstream answers (tests/e2e/edges/test_malformed_upstream.py).

The aiohttp mocks cannot send a bad status line, a non-numeric Content-Length or an invalid chunk:
``BrokenUpstream`` is a plain socket server that reads each request's head and body and writes the
bytes of a scripted ``BrokenReply``, in parts ``PAUSE_S`` apart (so they reach the gateway in separate
reads), optionally holding the connection open afterwards to see whether the gateway drops it. The
first path segment picks the reply, so one server backs one gateway provider per reply. Every request
is recorded as a ``RawExchange`` (``wait_for(request_id)``).

Its repertoire: ``BROKEN_REPLIES`` (invalid HTTP: the gateway must answer 502 or end the stream with
an error event) and ``ODD_REPLIES`` (valid HTTP that few servers send: a body ended by the connection
closing, a head arriving in pieces).
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .raw_server import RawServer

__all__ = [
    "BROKEN_REPLIES",
    "INVALID_HEADS",
    "ODD_JSON",
    "ODD_REPLIES",
    "BrokenReply",
    "BrokenUpstream",
    "RawExchange",
    "chunk",
]

PAUSE_S = 0.2
"""Between two parts of a broken reply, so they reach the gateway in separate reads."""
HOLD_OPEN_S = 15.0
"""How long a broken reply that holds its connection open waits for the gateway to close it."""


@dataclass(frozen=True)
class BrokenReply:
    """The bytes the upstream writes for one request, whatever the request was."""

    parts: tuple[bytes, ...]
    """Written one after another, PAUSE_S apart."""
    hold_open: bool = False
    """Keep the connection open afterwards until the peer closes it (at most HOLD_OPEN_S)."""


@dataclass
class RawExchange:
    """One request the broken upstream received."""

    behaviour: str
    request_id: str | None
    peer_closed: threading.Event = field(default_factory=threading.Event)
    """Set when the gateway closed the connection while the reply held it open."""


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


_FIRST_EVENT = {
    "id": "chatcmpl-raw",
    "object": "chat.completion.chunk",
    "created": 1_700_000_000,
    "model": "raw-model",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "first"}, "finish_reason": None}],
}
_BAD_CHUNK = b"zz\r\nnot a chunk\r\n"

BROKEN_REPLIES: dict[str, BrokenReply] = {
    "status-abc": BrokenReply((b"HTTP/1.1 abc\r\n\r\n",)),
    "random-bytes": BrokenReply((random.Random(20240601).randbytes(600) + b"\r\n\r\n",)),
    "text-garbage": BrokenReply((b"this is not http at all, just words\r\n\r\n",)),
    "status-999": BrokenReply((b"HTTP/1.1 999 Nope\r\nContent-Length: 0\r\n\r\n",)),
    "bad-length": BrokenReply(
        (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: twelve\r\n\r\n{}",)
    ),
    "bad-chunk-sse": BrokenReply(
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunk(b"data: " + json.dumps(_FIRST_EVENT).encode() + b"\n\n"),
            _BAD_CHUNK,
        ),
        hold_open=True,
    ),
    "bad-chunk-json": BrokenReply(
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunk(b'{"id": "chatcmpl-raw", '),
            _BAD_CHUNK,
        ),
        hold_open=True,
    ),
}


def _odd_events() -> bytes:
    base = {
        "id": "chatcmpl-raw",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "raw-model",
    }
    deltas: list[tuple[dict[str, Any], str | None]] = [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "until "}, None),
        ({"content": "eof"}, None),
        ({}, "stop"),
    ]
    events = [
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        for delta, finish in deltas
    ]
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


ODD_JSON = json.dumps(
    {
        "id": "chatcmpl-raw",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "raw-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "until eof"}, "finish_reason": "stop"}
        ],
    }
).encode()

ODD_REPLIES: dict[str, BrokenReply] = {
    # Valid HTTP that few servers send: a body that ends when the connection closes (no length, no
    # chunking), and a head that arrives in pieces.
    "eof-json": BrokenReply((b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + ODD_JSON,)),
    "eof-sse": BrokenReply((b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", _odd_events())),
    "split-head": BrokenReply(
        (
            b"HTT",
            b"P/1.1 200 OK\r\nContent-Type: application/json\r\nContent-",
            f"Length: {len(ODD_JSON)}\r\n\r\n".encode() + ODD_JSON[:10],
            ODD_JSON[10:],
        )
    ),
}
INVALID_HEADS = ("status-abc", "random-bytes", "text-garbage", "status-999", "bad-length")


def _read_request(conn: socket.socket) -> dict[str, str]:
    """Read one request (head and Content-Length body); its headers, lower-cased, plus ``:path``."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            raise ConnectionError("closed before the end of the request head")
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {":path": lines[0].split(" ")[1] if lines[0].count(" ") >= 2 else "/"}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        more = conn.recv(65536)
        if not more:
            raise ConnectionError("closed before the end of the request body")
        rest += more
    return headers


class BrokenUpstream(RawServer):
    """A loopback server that reads each HTTP request and answers scripted bytes (broken or odd HTTP).

    The first path segment picks the reply, so one server backs several providers:
    ``base_url("status-abc")`` is ``http://127.0.0.1:<port>/status-abc/v1``. One request per connection,
    closed once the reply is written (or, for ``hold_open`` replies, once the peer closed it).
    """

    def __init__(self, replies: Mapping[str, BrokenReply]) -> None:
        super().__init__("broken-upstream")
        self._replies = dict(replies)
        self._exchanges: list[RawExchange] = []

    def wait_for(self, request_id: str, timeout: float = 5.0) -> RawExchange:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for exchange in self._exchanges:
                    if exchange.request_id == request_id:
                        return exchange
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the broken upstream received no request {request_id!r}")
                self._cond.wait(remaining)

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(HOLD_OPEN_S)
            headers = _read_request(conn)
            behaviour = headers[":path"].split("/")[1]
            exchange = RawExchange(behaviour, headers.get("x-request-id"))
            with self._cond:
                self._exchanges.append(exchange)
                self._cond.notify_all()
            reply = self._replies.get(behaviour)
            if reply is None:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            for i, part in enumerate(reply.parts):
                if i and self._stopping.wait(PAUSE_S):
                    return
                conn.sendall(part)
            if reply.hold_open:
                try:
                    while conn.recv(65536):
                        pass
                except TimeoutError:
                    return
                except OSError:
                    pass  # reset by the peer: closed as well
                if not self._stopping.is_set():
                    exchange.peer_closed.set()
        except OSError:
            pass
        finally:
            with self._cond:
                self._open.discard(conn)
            conn.close()
