"""How long an upstream asked to be left alone: `retry-after-ms`, else `Retry-After` (seconds or an
HTTP date), read from an error answer's head."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Protocol, runtime_checkable

from gatecore.upstream.response import UpstreamResponse


@runtime_checkable
class HeaderLookup(Protocol):
    def header(self, name: bytes) -> bytes | None: ...


def retry_after_seconds(response: UpstreamResponse) -> float | None:
    """Seconds the upstream asked to wait (0 or more), or None when it said nothing usable."""
    if not isinstance(response, HeaderLookup):  # an in-memory answer: no head to read
        return None
    millis = response.header(b"retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = response.header(b"retry-after")
    if value is None:
        return None
    text = value.decode("latin-1").strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
