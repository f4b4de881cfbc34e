"""A raw-socket OpenAI-chat upstream that fails in one scripted way per path, for tests/reliability.

``FaultUpstream`` reads each request's head and body, then plays the ``Fault`` its first path segment
names (``base_url("reset-mid-stream")`` is ``http://127.0.0.1:<port>/reset-mid-stream/v1``). A fault
has a script for a streamed request (SSE) and one for a whole answer (JSON), picked by the request
body's ``"stream": true``: the bytes to write, a pause between them, and how the connection ends
(``close``, ``reset`` with SO_LINGER 0 so the peer gets an RST, or ``hold`` until the peer closes,
at most HOLD_S). Every request is recorded (``wait_for(request_id)``) with an event set when the
gateway closed a held connection, so a test can tell a gateway that lets go of a dead upstream from
one that leaks the connection.

FAULTS lists the repertoire; what the gateway must make of each is in tests/reliability.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from .raw_server import RawServer

__all__ = ["FAULTS", "Fault", "FaultUpstream", "Script", "Seen"]

HOLD_S = 20.0
"""How long a held connection waits for the gateway to close it."""


@dataclass(frozen=True)
class Script:
    """What the upstream writes for one request."""

    parts: tuple[bytes, ...] = ()
    pause_s: float = 0.05
    """Between two parts (so they reach the gateway in separate reads)."""
    end: Literal["close", "reset", "hold"] = "close"


@dataclass(frozen=True)
class Fault:
    stream: Script
    whole: Script


@dataclass
class Seen:
    """One request the fault upstream received."""

    fault: str
    request_id: str | None
    peer_closed: threading.Event = field(default_factory=threading.Event)


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _event(content: str | None, finish: str | None = None) -> bytes:
    delta: dict[str, Any] = {"role": "assistant", "content": content} if content is not None else {}
    obj = {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "fault-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


_SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
_JSON = json.dumps(
    {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fault-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "whole"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
).encode()
_JSON_HEAD = (
    f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(_JSON)}\r\n\r\n".encode()
)
_EOF_JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
_FIRST = _chunk(_event("first"))
_BAD_CHUNK = b"zz\r\nnot a chunk\r\n"
OVERSIZED_BYTES = 17 * 1024 * 1024
"""An event larger than the relay holds (relay/streaming.py MAX_EVENT_BYTES, 16 MiB)."""


def _trickle(data: bytes) -> tuple[bytes, ...]:
    return tuple(data[i : i + 1] for i in range(len(data)))


FAULTS: dict[str, Fault] = {
    # The connection is accepted, the request read, then reset: no byte of an answer.
    "reset-before-head": Fault(Script(end="reset"), Script(end="reset")),
    # Part of the answer, then an RST.
    "reset-mid-stream": Fault(
        Script((_SSE_HEAD + _FIRST,), end="reset"),
        Script((_JSON_HEAD + _JSON[:20],), end="reset"),
    ),
    # A complete head, then nothing (the connection stays open).
    "head-then-silence": Fault(
        Script((_SSE_HEAD + _FIRST,), end="hold"), Script((_JSON_HEAD + _JSON[:20],), end="hold")
    ),
    # One byte a second of the head: each read resets an idle timer, only the total timeout ends it.
    "trickle": Fault(
        Script(_trickle(_SSE_HEAD), pause_s=1.0, end="hold"), Script(_trickle(_JSON_HEAD), 1.0, "hold")
    ),
    "malformed-head": Fault(
        Script((b"HTTP/1.1 abc\r\n\r\n",), end="hold"), Script((b"HTTP/1.1 abc\r\n\r\n",), end="hold")
    ),
    "malformed-chunk": Fault(
        Script((_SSE_HEAD + _FIRST, _BAD_CHUNK), end="hold"),
        Script(
            (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                + _chunk(_JSON[:20]),
                _BAD_CHUNK,
            ),
            end="hold",
        ),
    ),
    # One SSE event larger than the relay may hold, never ended by a blank line.
    "oversized-event": Fault(
        Script((_SSE_HEAD + _FIRST, _chunk(b"data: " + b"x" * OVERSIZED_BYTES)), end="hold"),
        Script((_JSON_HEAD + _JSON,), end="hold"),
    ),
    # A body with no length that only the connection's close would end, and the close never comes.
    "never-closing": Fault(
        Script(
            (
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n" + _event("first"),
                _event(None, "stop"),
            ),
            end="hold",
        ),
        Script((_EOF_JSON_HEAD + _JSON,), end="hold"),
    ),
}


def _read_request(conn: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """One request: its path, lower-cased headers and body (Content-Length only)."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            raise ConnectionError("closed before the end of the request head")
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split(" ")[1] if lines[0].count(" ") >= 2 else "/"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        more = conn.recv(65536)
        if not more:
            raise ConnectionError("closed before the end of the request body")
        body += more
    return path, headers, body


class FaultUpstream(RawServer):
    """A loopback server playing FAULTS (or the `faults` given), one request per connection."""

    def __init__(self, faults: dict[str, Fault] | None = None) -> None:
        super().__init__("fault-upstream")
        self._faults = dict(FAULTS if faults is None else faults)
        self._seen: list[Seen] = []

    @property
    def open_connections(self) -> int:
        """Connections still open (a held one the gateway has not let go of counts)."""
        with self._cond:
            return len(self._open)

    def wait_for(self, request_id: str, timeout: float = 5.0) -> Seen:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for seen in self._seen:
                    if seen.request_id == request_id:
                        return seen
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"the fault upstream never received request {request_id!r}")
                self._cond.wait(remaining)

    def _serve(self, conn: socket.socket) -> None:
        try:
            path, headers, body = _read_request(conn)
            name = path.strip("/").split("/", 1)[0]
            fault = self._faults[name]
            try:
                streamed = json.loads(body).get("stream") is True
            except (ValueError, AttributeError):
                streamed = False
            seen = Seen(name, headers.get("x-request-id"))
            with self._cond:
                self._seen.append(seen)
                self._cond.notify_all()
            self._play(conn, fault.stream if streamed else fault.whole, seen)
        except (OSError, ConnectionError, KeyError):
            pass
        finally:
            with self._cond:
                self._open.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _play(self, conn: socket.socket, script: Script, seen: Seen) -> None:
        for i, part in enumerate(script.parts):
            if i and self._stopping.wait(script.pause_s):
                return
            conn.sendall(part)
        if script.end == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif script.end == "hold":
            conn.settimeout(HOLD_S)
            with contextlib.suppress(OSError):
                while conn.recv(65536):
                    pass
                seen.peer_closed.set()
