"""One error family for everything a client can be told.

Each error has a stable slug (`code`), an HTTP status and an error `type` as OpenAI names them.
Only `api/error_bodies.py` turns these into response bodies; nothing else formats errors.
"""

from __future__ import annotations


class Answered(Exception):
    """Raised by a stage that answered the client itself (a cache hit): the chain's later stages do
    not run, and the request is recorded like any other."""


class GatewayError(Exception):
    """An error the gateway reports to the client in the API's own error shape."""

    status: int = 500
    type: str = "api_error"
    code: str = "internal_error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ):
        super().__init__(message)
        self.message = message
        if code is not None:  # a more precise slug than the class's own
            self.code = code
        self.param = param
        self.headers = headers or []


class InvalidRequest(GatewayError):
    """The request body or parameters are malformed (400)."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_body"


class BodyTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "body_too_large"


class BodyTimeout(GatewayError):
    """The client did not send its whole body within `server.body_read_timeout_s` (408)."""

    status = 408
    type = "invalid_request_error"
    code = "body_timeout"


class AuthenticationFailed(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class ModelNotAllowed(GatewayError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"
    code = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class UpstreamUnreachable(GatewayError):
    """No connection to the upstream could be made (502)."""

    status = 502
    type = "upstream_error"
    code = "upstream_unreachable"
    retryable = True


class UpstreamProtocolError(GatewayError):
    """The upstream answered something that is not valid HTTP or not the expected format (502)."""

    status = 502
    type = "upstream_error"
    code = "upstream_protocol_error"
    retryable = True


class UpstreamTimeout(GatewayError):
    """The upstream did not connect, answer or continue in time (504)."""

    status = 504
    type = "timeout_error"
    code = "upstream_timeout"
    retryable = True


class UpstreamStreamError(GatewayError):
    """The upstream stream broke after the response started (reported as a final SSE event)."""

    status = 502
    type = "upstream_error"
    code = "upstream_stream_error"


class Forbidden(GatewayError):
    """The caller is known but its role does not allow this action (403)."""

    status = 403
    type = "permission_error"
    code = "forbidden"


class Conflict(GatewayError):
    """The change conflicts with existing state: a duplicate name, a tenant still in use (409)."""

    status = 409
    type = "invalid_request_error"
    code = "conflict"


class Unprocessable(GatewayError):
    """Well-formed, but refers to something unknown or breaks a rule of the data (422)."""

    status = 422
    type = "invalid_request_error"
    code = "unprocessable"


class StoreUnavailable(GatewayError):
    """The database could not be reached (503)."""

    status = 503
    type = "api_error"
    code = "store_unavailable"


class UpstreamError(GatewayError):
    """The upstream answered an error: its status, and its type/code/message in OpenAI's vocabulary.

    `body`, when set, is the upstream's own OpenAI-shaped error body: OpenAI clients get it byte for
    byte (pass-through providers); clients of other APIs get the fields rendered in their own shape.
    """

    type = "upstream_error"
    code = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        type_: str | None = None,
        code: str | None = None,
        param: str | None = None,
        body: bytes | None = None,
    ):
        super().__init__(message, code=code, param=param)
        self.status = status
        if type_ is not None:
            self.type = type_
        self.body = body


class RateLimited(GatewayError):
    """A rate limit (requests, tokens or concurrency per scope) is used up (429, with Retry-After)."""

    status = 429
    type = "requests"
    code = "rate_limit_exceeded"
    retryable = True


class BudgetExceeded(GatewayError):
    """A hard spend budget of the period is used up (429)."""

    status = 429
    type = "insufficient_quota"
    code = "budget_exceeded"


class LimitsUnavailable(GatewayError):
    """A fail-closed limit could not be checked: its shared store (Redis) is unreachable (503)."""

    status = 503
    type = "api_error"
    code = "limits_unavailable"
    retryable = True


# What the upstream did wrong (as opposed to gatecore refusing the request), for the metrics.
UPSTREAM_ERRORS = (
    UpstreamError,
    UpstreamUnreachable,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamStreamError,
)


class GuardrailBlocked(GatewayError):
    """A guardrail refused the request or the answer (400). The message names the guard and the
    entity type or check, never the matched text."""

    status = 400
    type = "invalid_request_error"
    code = "guardrail_blocked"
