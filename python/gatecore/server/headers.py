"""Response headers of inference routes, and the request id."""

from __future__ import annotations

import os
import re
from itertools import count
from typing import Any

from gatecore.errors import InvalidRequest
from gatecore.request import RequestContext
from gatecore.run_id import RUN_ID

# A client's own request id is kept when it is a plain token; anything else is replaced.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
_PREFIX = "req_" + os.urandom(6).hex()
_counter = count(1)
_ONE_ATTEMPT = ("x-gatecore-attempts", "1")


def request_id(client_value: str | None) -> str:
    """The client's `x-request-id` if it is a safe token, else a new id unique across processes."""
    if client_value is not None and _CLIENT_REQUEST_ID.fullmatch(client_value):
        return client_value
    return f"{_PREFIX}{next(_counter):x}"


def run_tag(client_value: str | None) -> str | None:
    """The client's `x-gatecore-run-id` (a tag grouping requests in the ledger into a benchmark run),
    None without one; 400 when it is not 1-128 characters of `A-Z a-z 0-9 . _ : + = @ -`."""
    if client_value is None:
        return None
    if RUN_ID.fullmatch(client_value):
        return client_value
    raise InvalidRequest(
        "'x-gatecore-run-id' must be 1-128 characters of letters, digits and . _ : + = @ -.",
        param="x-gatecore-run-id",
        code="invalid_run_id",
    )


def client_secret(headers: Any) -> str | None:
    """The client's API key: `Authorization: Bearer <key>`, else `x-api-key` (Anthropic clients)."""
    authorization = headers.get("authorization")
    if authorization is not None and authorization[:7].lower() == "bearer ":
        return str(authorization[7:].strip())
    key = headers.get("x-api-key")
    return None if key is None else str(key)


def inference_headers(ctx: RequestContext, content_type: str, overhead_ns: int) -> list[tuple[str, str]]:
    """The answer's head: the request id, gatecore's overhead so far (kept on the context for the
    ledger), the deployment and attempts, limit and timing headers."""
    ctx.overhead_ns = overhead_ns
    headers = [
        ("content-type", content_type),
        ("x-request-id", ctx.request_id),
        ("x-gatecore-overhead-ms", f"{overhead_ns / 1e6:.3f}"),
    ]
    if ctx.deployment is not None:
        attempts = ctx.attempts
        headers.append(("x-gatecore-model", ctx.deployment_id))
        headers.append(_ONE_ATTEMPT if attempts == 1 else ("x-gatecore-attempts", str(attempts)))
    if ctx.limits is not None:
        headers += ctx.limits.headers()
    if ctx.timing is not None:
        headers.append(ctx.timing.header(overhead_ns))
    return headers


def request_tags(value: str | None) -> frozenset[str] | None:
    """`x-gatecore-tags: a, b` → {"a", "b"}; None when absent or empty."""
    if not value:
        return None
    tags = frozenset(t for t in (part.strip() for part in value.split(",")) if t)
    return tags or None
