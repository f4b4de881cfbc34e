"""A Responses answer from an upstream that speaks Responses natively, relayed as it is.

Only the lifecycle events (`response.created`, `.in_progress`, `.completed`, `.incomplete`,
`.failed`: a handful per stream) are parsed, to put the client's model name back in their `response`
and take the usage and the finished response (for the ledger and the stored-responses store); every
other event goes out byte for byte. A stream that ends without a terminal event ends with an `error`
event, as the reference sends one.
"""

from __future__ import annotations

from typing import Any

import orjson

from gatecore.errors import GatewayError, UpstreamProtocolError
from gatecore.request import Usage

_LIFECYCLE = frozenset(
    {b"response.created", b"response.in_progress", b"response.queued", b"response.completed",
     b"response.incomplete", b"response.failed"}
)  # fmt: skip
_TERMINAL = frozenset({b"response.completed", b"response.incomplete", b"response.failed"})


def looks_native(events: bytes) -> bool:
    """Whether the first events of a stream are Responses events (chat chunks never have these)."""
    return b"event: response." in events or b'"type":"response.' in events or b"event: error" in events


class NativeStream:
    """The state of one natively relayed Responses stream."""

    __slots__ = ("events", "final", "model", "previous", "terminal", "usage")

    def __init__(self, model: str, previous: str | None):
        self.model = model
        # The previous_response_id gatecore replayed in place of the client's (put back in responses).
        self.previous = previous
        self.events = 0
        self.terminal = False
        self.usage: dict[str, Any] | None = None
        self.final: dict[str, Any] | None = None

    def feed(self, events: bytes) -> bytes:
        if b"\r" in events:
            events = events.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        out: list[bytes] = []
        for raw in events.split(b"\n\n"):
            if not raw.strip(b"\r\n"):
                continue
            self.events += 1
            name = raw[7:].split(b"\n", 1)[0].strip() if raw.startswith(b"event: ") else b""
            if name in _LIFECYCLE:
                raw = self._lifecycle(name, raw)
            out.append(raw + b"\n\n")
        return b"".join(out)

    def _lifecycle(self, name: bytes, raw: bytes) -> bytes:
        lines = raw.split(b"\n")
        for i, line in enumerate(lines):
            if not line.startswith(b"data:"):
                continue
            try:
                doc = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                return raw  # relayed as it came: the client judges it
            response = doc.get("response") if isinstance(doc, dict) else None
            if not isinstance(response, dict):
                return raw
            if "model" in response:
                response["model"] = self.model
            if self.previous is not None:
                response["previous_response_id"] = self.previous
            if name in _TERMINAL:
                self.terminal = True
                usage = response.get("usage")
                self.usage = usage if isinstance(usage, dict) else None
                if name != b"response.failed":
                    self.final = response
            lines[i] = b"data: " + orjson.dumps(doc)
            return b"\n".join(lines)
        return raw

    def finish(self, usage: Usage) -> None:
        """Check the stream ended with its terminal event, and put its usage into `usage`."""
        if not self.terminal:
            raise UpstreamProtocolError("The upstream stream ended before the response was complete.")
        found = self.usage
        if found is not None:
            details = found.get("input_tokens_details") or {}
            out_details = found.get("output_tokens_details") or {}
            usage.input_tokens = _count(found.get("input_tokens"))
            usage.output_tokens = _count(found.get("output_tokens"))
            usage.cached_tokens = _count(details.get("cached_tokens") if isinstance(details, dict) else 0)
            usage.reasoning_tokens = _count(
                out_details.get("reasoning_tokens") if isinstance(out_details, dict) else 0
            )
            usage.source = "upstream"

    def error_event(self, exc: GatewayError) -> bytes:
        data = {"type": "error", "sequence_number": self.events, "code": exc.code or "server_error",
                "message": exc.message, "param": None}  # fmt: skip
        self.events += 1
        return b"event: error\ndata: " + orjson.dumps(data) + b"\n\n"


def _count(value: Any) -> int:
    return value if isinstance(value, int) and 0 <= value < 1 << 53 else 0
