"""An OpenAI-shaped upstream error (a whole error body, or a mid-stream error event) → a GatewayError.

The hub format's errors, read for clients of another API: the status is kept (an upstream that says it
is overloaded becomes 529, Anthropic's status for that), and the type follows the status when
rendered. The upstream's message is kept, as the OpenAI route forwards it.
"""

from __future__ import annotations

from typing import Any

import orjson

from gatecore.errors import GatewayError

# Mid-stream errors carry no HTTP status: one is inferred from OpenAI's error type or code.
_STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "requests": 429,
    "tokens": 429,
    "overloaded_error": 529,
}


def upstream_error(status: int, error: Any) -> GatewayError:
    """A GatewayError for an upstream's `error` member (an object or a string) and HTTP status."""
    message = ""
    words: list[str] = []
    if isinstance(error, dict):
        raw_message = error.get("message")
        message = raw_message if isinstance(raw_message, str) else ""
        words = [w for w in (error.get("type"), error.get("code")) if isinstance(w, str)]
    elif isinstance(error, str):
        message = error
    if status == 0:  # a stream's error event: no status of its own
        status = next((_STATUS_BY_TYPE[w] for w in words if w in _STATUS_BY_TYPE), 500)
    if status == 503 and any("overloaded" in w for w in words):
        status = 529
    exc = GatewayError(message[:2000] or f"The upstream answered HTTP {status}.", code="upstream_error")
    exc.status = status
    exc.type = "upstream_error"
    return exc


def upstream_error_from_body(status: int, body: bytes) -> GatewayError:
    """A GatewayError for an upstream's whole error body, OpenAI-shaped or not."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict | str):
        return upstream_error(status, doc["error"])
    text = body[:512].decode("utf-8", "replace").strip()
    return upstream_error(status, f"The upstream answered HTTP {status}" + (f": {text}" if text else "."))
