"""The chain's first stage: the client's body, read within the size limit."""

from __future__ import annotations

from typing import Any

from granian._granian import RSGIProtocolClosed as ProtocolClosed

from gatecore.errors import BodyTooLarge, InvalidRequest
from gatecore.request import RequestContext


async def read_body(headers: Any, proto: Any, limit: int) -> bytes:
    """The whole request body; 413 as soon as it is known to exceed `limit` bytes."""
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("Invalid Content-Length header.", code="invalid_header")
        if int(declared) > limit:
            raise BodyTooLarge(f"The request body is larger than the limit of {limit} bytes.")
        try:
            body: bytes = await proto()
        except ProtocolClosed:
            raise _incomplete() from None
        return body
    # No length given (chunked upload): read piece by piece and stop at the limit.
    parts: list[bytes] = []
    size = 0
    try:
        async for part in proto:
            size += len(part)
            if size > limit:
                raise BodyTooLarge(f"The request body is larger than the limit of {limit} bytes.")
            parts.append(part)
    except ProtocolClosed:
        raise _incomplete() from None
    return b"".join(parts)


def _incomplete() -> InvalidRequest:
    # The client stopped sending before the end of its body; if it still listens, it gets this 400.
    return InvalidRequest("The request body ended before its declared length.", code="incomplete_body")


class ReadBody:
    """Reads the client's body into the context (413 past `server.max_body_bytes`, 400 when the
    client stops sending early)."""

    __slots__ = ("limit",)

    def __init__(self, limit: int):
        self.limit = limit

    async def __call__(self, ctx: RequestContext) -> None:
        declared = ctx.headers.get("content-length")
        if declared is None or not declared.isdigit() or int(declared) > self.limit:
            # Chunked, or a length to refuse: read_body says what is wrong.
            ctx.body = await read_body(ctx.headers, ctx.client, self.limit)
            return
        # A length within the limit, the common case: the read inlined (one coroutine less).
        try:
            ctx.body = await ctx.client()
        except ProtocolClosed:
            raise _incomplete() from None
