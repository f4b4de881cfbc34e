"""The only place errors become response bodies: OpenAI's error shape, Anthropic's and Gemini's.

Each client API route answers in its own shape (`ClientFormat`): OpenAI routes with
`{"error": {"message", "type", "param", "code"}}`, the Anthropic Messages routes with
`{"type": "error", "error": {"type", "message"}}`. The HTTP status is the error's own in both.
"""

from __future__ import annotations

from collections.abc import Callable

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

# -- Anthropic ------------------------------------------------------------------------------------------

# Anthropic's error vocabulary by HTTP status (its API reference, "Errors"). Other 4xx are
# invalid_request_error and other 5xx api_error, with the status kept (502 and 504 included).
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    """Anthropic's error `type` for an HTTP status."""
    found = _ANTHROPIC_TYPES.get(status)
    if found is not None:
        return found
    return "api_error" if status >= 500 else "invalid_request_error"


def anthropic_error_body(message: str, type_: str) -> bytes:
    """`{"type": "error", "error": {"type", "message"}}` as Anthropic sends it."""
    return orjson.dumps({"type": "error", "error": {"type": type_, "message": message}})


def render_anthropic_error(exc: GatewayError) -> bytes:
    return anthropic_error_body(exc.message, anthropic_error_type(exc.status))


def anthropic_stream_error_event(exc: GatewayError) -> bytes:
    """Anthropic's `event: error` that ends a stream which broke after it started."""
    return b"event: error\ndata: " + render_anthropic_error(exc) + b"\n\n"


ANTHROPIC_INTERNAL_ERROR = anthropic_error_body(
    "The gateway failed to handle this request; it has been logged.", "api_error"
)


class ClientFormat:
    """How one client API words its errors: the error body, and the stream's closing error event."""

    __slots__ = ("internal_error", "name", "render_error", "stream_error_event")

    def __init__(
        self,
        name: str,
        render_error: Callable[[GatewayError], bytes],
        stream_error_event: Callable[[GatewayError], bytes],
        internal_error: bytes,
    ):
        self.name = name
        self.render_error = render_error
        self.stream_error_event = stream_error_event
        self.internal_error = internal_error


OPENAI = ClientFormat("openai", render_error, stream_error_event, INTERNAL_ERROR)
ANTHROPIC = ClientFormat(
    "anthropic", render_anthropic_error, anthropic_stream_error_event, ANTHROPIC_INTERNAL_ERROR
)

# -- Gemini ---------------------------------------------------------------------------------------------

# Google's canonical error status names by HTTP status (google.rpc.Code, as the Gemini API sends them).
_GOOGLE_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def gemini_error_body(status: int, message: str) -> bytes:
    """`{"error": {"code", "message", "status"}}` as the Gemini API sends it."""
    name = _GOOGLE_STATUSES.get(status) or ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    return orjson.dumps({"error": {"code": status, "message": message, "status": name}})


def render_gemini_error(exc: GatewayError) -> bytes:
    message = exc.message
    if exc.param and exc.param not in message:
        message = f"{message} (field: {exc.param})"
    return gemini_error_body(exc.status, message)


def gemini_stream_error_event(exc: GatewayError) -> bytes:
    """The error chunk that ends a Gemini `alt=sse` stream which broke after it started."""
    return b"data: " + render_gemini_error(exc) + b"\r\n\r\n"


GEMINI_INTERNAL_ERROR = gemini_error_body(
    500, "The gateway failed to handle this request; it has been logged."
)
GEMINI = ClientFormat("gemini", render_gemini_error, gemini_stream_error_event, GEMINI_INTERNAL_ERROR)
