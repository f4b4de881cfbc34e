"""Upstream error answers in OpenAI's error vocabulary, shared by every provider."""

from __future__ import annotations

import re
from typing import Any

import orjson

from gatecore.errors import GatewayError, UpstreamError

# Statuses whose Retry-After the client is told (RFC 9110 §10.2.3: 503 and 429; Anthropic's 529 too).
RETRY_AFTER_STATUSES = frozenset((429, 503, 529))
_RETRY_AFTER = re.compile(rb"[0-9]{1,10}|[A-Za-z]{3}, [0-9]{2} [A-Za-z]{3} [0-9]{4} [0-9:]{8} GMT")

# OpenAI's error `type` for each status class a provider can answer.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error_type(status: int) -> str:
    """The OpenAI error type a client expects with `status`."""
    if status in _TYPES:
        return _TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def json_object(body: bytes) -> dict[str, Any] | None:
    """`body` as a JSON object, or None when it is not one."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def unshaped_error(status: int, body: bytes) -> UpstreamError:
    """An error answer in no format the provider knows: its status kept, its text quoted (shortened)."""
    text = body[:512].decode("utf-8", "replace").strip()
    message = f"The upstream answered HTTP {status}" + (f": {text}" if text else ".")
    return UpstreamError(message, status=status, type_="upstream_error", code="upstream_error")


def openai_shaped_error(status: int, body: bytes) -> UpstreamError:
    """An OpenAI-format error answer (`{"error": {...}}` or `{"error": "..."}`) relayed as it is;
    anything else wrapped with the same status."""
    doc = json_object(body)
    error = doc.get("error") if doc is not None else None
    if isinstance(error, dict):
        message = error.get("message")
        code = error.get("code")
        param = error.get("param")
        return UpstreamError(
            message if isinstance(message, str) else f"The upstream answered HTTP {status}.",
            status=status,
            type_=error.get("type") if isinstance(error.get("type"), str) else openai_error_type(status),
            code=code if isinstance(code, str) else None,
            param=param if isinstance(param, str) else None,
            body=body,
        )
    if isinstance(error, str):
        return UpstreamError(error, status=status, type_=openai_error_type(status), body=body)
    return unshaped_error(status, body)


def keep_retry_after(error: GatewayError, retry_after: bytes | None) -> GatewayError:
    """`error` with the upstream's `Retry-After` (delay-seconds or an HTTP-date) among its headers, so
    the client backs off as long as the upstream asked; a malformed value is left out, not relayed."""
    if retry_after is not None and error.status in RETRY_AFTER_STATUSES:
        value = retry_after.strip()
        if _RETRY_AFTER.fullmatch(value):
            error.headers = [*error.headers, ("retry-after", value.decode("ascii"))]
    return error
