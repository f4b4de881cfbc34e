"""The only place errors become response bodies (OpenAI's error shape)."""

from __future__ import annotations

import orjson

from gatecore.errors import GatewayError, UpstreamError

JSON = "application/json"


def openai_error_body(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    """`{"error": {"message", "type", "param", "code"}}` as OpenAI sends it."""
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def render_error(exc: GatewayError) -> bytes:
    """The OpenAI error body of `exc` (an upstream's own OpenAI-shaped body is kept byte for byte)."""
    if isinstance(exc, UpstreamError) and exc.body is not None:
        return exc.body
    return openai_error_body(exc.message, exc.type, exc.code, exc.param)


def stream_error_event(exc: GatewayError) -> bytes:
    """The last event of a stream that broke after it started: an SSE `data:` line with the error."""
    return b"data: " + render_error(exc) + b"\n\n"


INTERNAL_ERROR = openai_error_body(
    "The gateway failed to handle this request; it has been logged.", "api_error", "internal_error"
)
