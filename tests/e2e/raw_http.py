"""A minimal HTTP/1.1 client over raw sockets.

The SDKs validate what they send; these tests need to send what no SDK would (broken JSON, bad header
names, bogus framing) and to see exactly when each byte of a stream arrives.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Headers = Mapping[str, str] | Sequence[tuple[str, str]]


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    """Header names lower-cased, in the order received."""
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


class ConnectionClosed(Exception):
    """The server closed the connection before a complete response."""


def build_request(
    method: str,
    path: str,
    port: int,
    body: bytes | None = None,
    headers: Headers | None = None,
    *,
    content_length: bool = True,
) -> bytes:
    """Serialise a request; adds Host, Connection: close and (unless told not to) Content-Length."""
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    names = {k.lower() for k, _ in items}
    lines = [f"{method} {path} HTTP/1.1".encode("latin-1")]
    if "host" not in names:
        lines.append(f"Host: 127.0.0.1:{port}".encode())
    if "connection" not in names:
        lines.append(b"Connection: close")
    if body is not None and content_length and "content-length" not in names:
        lines.append(f"Content-Length: {len(body)}".encode())
    lines.extend(f"{k}: {v}".encode("utf-8", "surrogateescape") for k, v in items)
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


class _Reader:
    """Buffered reads from a socket, with an overall deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buf = b""
        self.eof = False
        self.recv_times: list[float] = []

    def fill(self) -> bool:
        """Read once more; False at EOF. Raises TimeoutError past the deadline."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no complete response before the deadline")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.recv_times.append(time.monotonic())
        self.buf += data
        return True

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            if not self.fill():
                raise ConnectionClosed(f"closed before {marker!r}")
        head, _, self.buf = self.buf.partition(marker)
        return head

    def read_exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self.fill():
                raise ConnectionClosed("closed mid-body")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_to_eof(self) -> bytes:
        while self.fill():
            pass
        data, self.buf = self.buf, b""
        return data


def _parse_head(head: bytes) -> tuple[int, str, list[tuple[str, str]]]:
    lines = head.split(b"\r\n")
    parts = lines[0].decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ConnectionClosed(f"bad status line {lines[0]!r}")
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return status, reason, headers


def _read_chunk(reader: _Reader) -> bytes | None:
    """One chunk of a chunked body; None for the last (zero-size) chunk."""
    size_line = reader.read_until(b"\r\n")
    size = int(size_line.split(b";")[0].strip() or b"0", 16)
    if size == 0:
        # Trailers (none expected) end with an empty line.
        while reader.read_until(b"\r\n"):
            pass
        return None
    data = reader.read_exactly(size)
    reader.read_until(b"\r\n")
    return data


def _read_body(reader: _Reader, method: str, status: int, headers: list[tuple[str, str]]) -> bytes:
    header_map = dict(headers)
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return b""
    if "chunked" in header_map.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        while (chunk := _read_chunk(reader)) is not None:
            parts.append(chunk)
        return b"".join(parts)
    if "content-length" in header_map:
        return reader.read_exactly(int(header_map["content-length"]))
    return reader.read_to_eof()


def exchange(
    port: int, data: bytes, *, method: str = "POST", timeout: float = 10.0, half_close: bool = False
) -> RawResponse:
    """Send raw request bytes on a new connection and read one response.

    Raises ConnectionClosed when the server closes without a complete response, TimeoutError when none
    comes within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            # The server may answer (413, 400) and close before reading everything; read what it said.
            pass
        reader = _Reader(sock, deadline)
        status, reason, headers = _parse_head(reader.read_until(b"\r\n\r\n"))
        while status == 100:
            status, reason, headers = _parse_head(reader.read_until(b"\r\n\r\n"))
        body = _read_body(reader, method, status, headers)
        return RawResponse(status, reason, headers, body)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Headers | None = None,
    *,
    timeout: float = 10.0,
) -> RawResponse:
    """One request on a new connection (``Connection: close``)."""
    data = build_request(method, path, port, body, headers)
    return exchange(port, data, method=method, timeout=timeout)


def post_json(
    port: int, path: str, obj: Any, key: str | None = None, *, extra_headers: Headers | None = None
) -> RawResponse:
    """POST a JSON body with an optional bearer key."""
    headers = [("Content-Type", "application/json")]
    if key is not None:
        headers.append(("Authorization", f"Bearer {key}"))
    if extra_headers is not None:
        headers += list(extra_headers.items()) if isinstance(extra_headers, Mapping) else list(extra_headers)
    return request(port, "POST", path, json.dumps(obj).encode(), headers)


@dataclass
class SseArrival:
    data: bytes
    """The joined ``data:`` lines of one event."""
    at: float
    """time.monotonic() of the recv() that completed the event."""
    recv_index: int
    """Which recv() completed it: two events with the same index arrived merged."""


class RawStream:
    """A streamed response read event by event, with the arrival time of each."""

    def __init__(self, port: int, path: str, body: bytes, headers: Headers, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.reader = _Reader(self.sock, time.monotonic() + timeout)
            self.sock.sendall(build_request("POST", path, port, body, headers))
            self.status, self.reason, self.headers = _parse_head(self.reader.read_until(b"\r\n\r\n"))
        except BaseException:
            self.sock.close()
            raise
        self.chunked = "chunked" in dict(self.headers).get("transfer-encoding", "").lower()
        self.ended_cleanly = False
        """True when the body ended with its proper terminator (the zero chunk)."""

    def header(self, name: str) -> str | None:
        return dict(self.headers).get(name.lower())

    def _body_bytes(self) -> Iterator[tuple[bytes, int]]:
        """Body bytes as they come, each with the index of the recv() that delivered them."""
        reader = self.reader
        if not self.chunked:
            while True:
                if reader.buf:
                    data, reader.buf = reader.buf, b""
                    yield data, len(reader.recv_times) - 1
                if not reader.fill():
                    self.ended_cleanly = True
                    return
        while True:
            try:
                chunk = _read_chunk(reader)
            except ConnectionClosed:
                return
            if chunk is None:
                self.ended_cleanly = True
                return
            yield chunk, len(reader.recv_times) - 1

    def events(self) -> Iterator[SseArrival]:
        """SSE events as they arrive. Stops at the end of the body (or when the connection drops)."""
        pending = b""
        for data, index in self._body_bytes():
            at = self.reader.recv_times[index] if index >= 0 else time.monotonic()
            pending += data.replace(b"\r\n", b"\n")
            while b"\n\n" in pending:
                raw, _, pending = pending.partition(b"\n\n")
                lines = [line[5:].lstrip(b" ") for line in raw.split(b"\n") if line.startswith(b"data:")]
                if lines:
                    yield SseArrival(b"\n".join(lines), at, index)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class StreamResult:
    status: int
    events: list[SseArrival]
    ended: bool
    """The body ended properly (zero chunk, or close without chunking) before the deadline."""
    elapsed: float

    @property
    def data(self) -> list[bytes]:
        return [e.data for e in self.events]


def read_stream(port: int, path: str, body: bytes, headers: Headers, timeout: float = 8.0) -> StreamResult:
    """Read a whole streamed answer, and say whether it ended (instead of raising on a hang)."""
    started = time.monotonic()
    events: list[SseArrival] = []
    with RawStream(port, path, body, headers, timeout) as stream:
        if stream.status != 200:
            return StreamResult(stream.status, [], True, time.monotonic() - started)
        try:
            events.extend(stream.events())
        except TimeoutError:
            return StreamResult(stream.status, events, False, time.monotonic() - started)
        return StreamResult(stream.status, events, stream.ended_cleanly, time.monotonic() - started)
