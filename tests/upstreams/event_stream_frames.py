"""Builds AWS event-stream messages (application/vnd.amazon.eventstream), written from AWS's
description of the framing: prelude (total length, headers length, CRC32 of those 8 bytes), headers
(name length, name, type 7 = string, value length, value), payload, CRC32 of all that precedes.

Independent of the gateway's Rust decoder, so the two check each other.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One message with string headers."""
    raw_headers = b""
    for name, value in headers.items():
        n, v = name.encode(), value.encode()
        raw_headers += struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(event_type: str, body: dict[str, Any]) -> bytes:
    """A ConverseStream event: `:event-type`, JSON payload (with the `p` padding field AWS adds)."""
    payload = json.dumps({**body, "p": "abcdefghijkl"}).encode()
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, payload)


def exception(exception_type: str, message: str) -> bytes:
    """An exception message, as Bedrock sends a mid-stream error."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return frame(headers, json.dumps({"message": message}).encode())
