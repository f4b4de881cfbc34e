"""The body stage: the client's body, read within the size limit and the read deadline.

It runs after auth (pipeline/chain.py): nothing of an unknown caller's body is read, so a stalled or
oversized upload without a valid key costs the worker a 401, not its memory. A caller that is known
gets `server.max_body_bytes` and `server.body_read_timeout_s` to send its body (413, 408).
"""

from __future__ import annotations

import asyncio
from typing import Any

from granian._granian import RSGIProtocolClosed as ProtocolClosed

from gatecore.errors import BodyTimeout, BodyTooLarge, InvalidRequest
from gatecore.request import RequestContext
from gatecore.upstream.deadlines import DeadlineSweeper


class ReadDeadline:
    """The time a body read may take: the sweeper cancels the reading task when it is due (a set
    entry for the sweep, where a loop timer per request would cost ~30 times more)."""

    __slots__ = ("due", "expired", "task")

    def __init__(self, due: float, task: asyncio.Task[Any] | None):
        self.due = due
        self.task = task
        self.expired = False

    def expire(self) -> None:
        if self.task is not None:
            self.expired = True
            self.task.cancel()


async def read_body(
    headers: Any, proto: Any, limit: int, sweeper: DeadlineSweeper, timeout_s: float
) -> bytes:
    """The whole request body; 413 as soon as it is known to exceed `limit` bytes, 408 when it has
    not arrived within `timeout_s`."""
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("Invalid Content-Length header.", code="invalid_header")
        if int(declared) > limit:
            raise BodyTooLarge(f"The request body is larger than the limit of {limit} bytes.")
    deadline = ReadDeadline(sweeper.now() + timeout_s, asyncio.current_task())
    sweeper.add(deadline)
    try:
        if declared is not None:
            body: bytes = await proto()
            return body
        # No length given (chunked upload): read piece by piece and stop at the limit.
        parts: list[bytes] = []
        size = 0
        async for part in proto:
            size += len(part)
            if size > limit:
                raise BodyTooLarge(f"The request body is larger than the limit of {limit} bytes.")
            parts.append(part)
        return b"".join(parts)
    except ProtocolClosed:
        raise _incomplete() from None
    except asyncio.CancelledError:
        if not deadline.expired:  # cancelled from elsewhere: shutdown, a gone client
            raise
        raise _timed_out(deadline, timeout_s) from None
    finally:
        sweeper.discard(deadline)


def _timed_out(deadline: ReadDeadline, timeout_s: float) -> BodyTimeout:
    """The 408 of a read its deadline cancelled (the cancellation is taken back: it was ours)."""
    assert deadline.task is not None
    deadline.task.uncancel()  # this cancellation was ours, and it ends here
    return BodyTimeout(f"The request body did not arrive within {timeout_s:g} s.")


def _incomplete() -> InvalidRequest:
    # The client stopped sending before the end of its body; if it still listens, it gets this 400.
    return InvalidRequest("The request body ended before its declared length.", code="incomplete_body")


class ReadBody:
    """Reads the client's body into the context (413 past `server.max_body_bytes`, 408 past
    `server.body_read_timeout_s`, 400 when the client stops sending early)."""

    __slots__ = ("limit", "sweeper", "timeout_s")

    def __init__(self, limit: int, sweeper: DeadlineSweeper, timeout_s: float):
        self.limit = limit
        self.sweeper = sweeper
        self.timeout_s = timeout_s

    async def __call__(self, ctx: RequestContext) -> None:
        headers = ctx.headers
        declared = headers.get("content-length")
        if declared is None or not declared.isdigit() or int(declared) > self.limit:
            # Chunked, or a length to refuse: read_body says what is wrong or reads the pieces.
            ctx.body = await read_body(headers, ctx.client, self.limit, self.sweeper, self.timeout_s)
            return
        # A length within the limit, the common case: read_body's read inlined (one coroutine less).
        sweeper = self.sweeper
        deadline = ReadDeadline(sweeper.now() + self.timeout_s, asyncio.current_task())
        sweeper.add(deadline)
        try:
            ctx.body = await ctx.client()
        except ProtocolClosed:
            raise _incomplete() from None
        except asyncio.CancelledError:
            if not deadline.expired:  # cancelled from elsewhere: shutdown, a gone client
                raise
            raise _timed_out(deadline, self.timeout_s) from None
        finally:
            sweeper.discard(deadline)
