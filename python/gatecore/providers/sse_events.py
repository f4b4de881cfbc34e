"""Splitting a provider's own SSE stream into events, for the decoders that translate it."""

from __future__ import annotations

from gatecore.errors import UpstreamProtocolError

# An upstream that never ends an event would otherwise make the decoder hold ever more memory.
MAX_EVENT_BYTES = 16 * 1024 * 1024


class SseEventSplitter:
    """Incremental SSE parser: bytes split anywhere in, `(event name, data)` pairs out.

    Lines end in LF, CRLF or CR; an event ends at a blank line. Multi-line `data:` fields are joined
    with LF; comments and `id:`/`retry:` lines are dropped. A stream that does not start like SSE
    (a JSON or HTML body under the wrong content type) is rejected at once.
    """

    __slots__ = ("_buffer", "_started")

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False

    @property
    def pending(self) -> bool:
        """True while part of an event is held (at EOF: the stream was cut mid-event)."""
        return bool(self._buffer.strip())

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if not self._started and buffer.strip():
            first = buffer.lstrip()[:1]
            if first in (b"{", b"[", b"<"):
                raise UpstreamProtocolError("The upstream did not answer with an event stream.")
            self._started = True
        if b"\r" in buffer:
            # A CR at the very end may be the first half of a CRLF: keep it for the next chunk.
            held_cr = buffer.endswith(b"\r")
            buffer = buffer[:-1] if held_cr else buffer
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + (b"\r" if held_cr else b"")
        blocks = buffer.split(b"\n\n")
        self._buffer = blocks.pop()
        if len(self._buffer) > MAX_EVENT_BYTES:
            raise UpstreamProtocolError(f"The upstream sent an event larger than {MAX_EVENT_BYTES} bytes.")
        events = []
        for block in blocks:
            name = b""
            data: list[bytes] = []
            for line in block.split(b"\n"):
                if line.startswith(b"data:"):
                    data.append(line[6:] if line[5:6] == b" " else line[5:])
                elif line.startswith(b"event:"):
                    name = line[6:].strip()
            if data or name:
                events.append((name, b"\n".join(data)))
        return events
