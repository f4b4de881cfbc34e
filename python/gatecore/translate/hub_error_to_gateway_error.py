"""An OpenAI-shaped upstream error (a whole error body, or a mid-stream error event) → a GatewayError.

The hub format's errors, read for clients of another API: the status is kept (an upstream that says it
is overloaded becomes 529, Anthropic's status for that), and the type follows the status when
rendered. The upstream's message is kept, as the OpenAI route forwards it.
"""

from __future__ import annotations

from typing import Any

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
    exc = GatewayError(message[:2000] or f"The upstream answered HTTP {status}.", code="upstream_error")
    exc.status = status
    exc.type = next((w for w in words if "overloaded" in w), "upstream_error")
    return overloaded_as_529(exc)


def overloaded_as_529(exc: GatewayError) -> GatewayError:
    """Anthropic answers 529 when it is overloaded: a 503 whose type or code says so becomes one."""
    if exc.status == 503 and any("overloaded" in word for word in (exc.type, exc.code or "")):
        exc.status = 529
    return exc
