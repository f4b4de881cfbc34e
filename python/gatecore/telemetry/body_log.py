"""Body logging: the request and answer bodies of opted-in keys, for their access-log lines.

Only keys whose metadata, or whose team's metadata, has `log_bodies: true` are logged (`KeyPolicy.
log_bodies`); every other request's line carries no body field at all. Each body is cut after
`server.body_log_max_bytes` bytes. Before it is cut, and before anything else sees it:

1. the caller's own key is replaced by `[key]` wherever it appears (a client that pasted its key into
   a prompt does not find it in the log; the answer is captured with a margin of the key's length, so
   a key straddling the cut is still found whole);
2. the text goes through the configured `Redactor`, if any. There is none yet: the guardrails' PII
   matcher plugs in here (`AccessLog.redactor`) and then redacts every logged body.

A streamed answer is logged as the events written to the client, in the client's API shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from gatecore.request import BodyCapture, RequestContext

if TYPE_CHECKING:
    from gatecore.config.schema import ServerConfig

KEY_MARK = "[key]"


class Redactor(Protocol):
    """Rewrites text before it is logged (the guardrails' PII matcher: e-mails, card numbers, …)."""

    def redact(self, text: str) -> str:
        """`text` with whatever must not be logged replaced."""
        ...


def capture_limit(body_log_bytes: int, secret: str | None) -> int:
    """How much of the answer to keep: the logged size plus room for a key straddling the cut."""
    return body_log_bytes + (len(secret.encode()) if secret else 0)


class BodyCaptureStage:
    """Starts capturing the answer of a request whose key opted into body logging."""

    __slots__ = ("body_log_bytes",)

    def __init__(self, body_log_bytes: int):
        self.body_log_bytes = body_log_bytes

    def __call__(self, ctx: RequestContext) -> None:
        key = ctx.key
        if key is not None and key.log_bodies:
            ctx.body_capture = BodyCapture(capture_limit(self.body_log_bytes, ctx.api_key))


def body_capture_stage(server: ServerConfig) -> BodyCaptureStage | None:
    """The stage, when bodies can be logged at all: the access log is on and keeps some bytes."""
    if not server.access_log or not server.body_log_max_bytes:
        return None
    return BodyCaptureStage(server.body_log_max_bytes)


def logged_body(data: bytes, limit: int, secret: str | None, redactor: Redactor | None) -> tuple[str, bool]:
    """The text to log for a body and whether it was cut; see the module docstring for the order."""
    margin = len(secret.encode()) if secret else 0
    text = data[: limit + margin].decode("utf-8", "replace")
    if secret:
        text = text.replace(secret, KEY_MARK)
    if redactor is not None:
        text = redactor.redact(text)
    cut = text.encode()[:limit].decode("utf-8", "ignore")  # never half a character
    return cut, len(data) > limit or len(cut) < len(text)


def body_fields(ctx: RequestContext, limit: int, redactor: Redactor | None) -> dict[str, Any]:
    """The access-log fields of an opted-in request (`ctx.body_capture` set); {} otherwise."""
    capture = ctx.body_capture
    if capture is None:
        return {}
    secret = ctx.api_key
    request, request_cut = logged_body(ctx.body, limit, secret, redactor)
    response, response_cut = logged_body(capture.data(), limit, secret, redactor)
    return {
        "request_body": request,
        "request_body_truncated": request_cut,
        "response_body": response,
        "response_body_truncated": response_cut or capture.truncated,
    }
