"""The connection pool used when tracing is on: every exchange is an upstream attempt with its own
client span, and the upstream receives that span's context as `traceparent` (and `tracestate`).

Every provider's request goes through `ConnectionPool.exchange` (one call per attempt: a retry, a
fallback or a hedge is a new call), so this one override traces and propagates for all of them,
and the untraced pool stays as it was (PoolSet picks the class once, at start).

`exchange` is a plain method returning the pool's own coroutine for requests without spans (not a
client's request, or not sampled): no coroutine of its own wraps theirs.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from gatecore.request import RequestContext
from gatecore.telemetry.trace_spans import RequestTrace, UnsampledTrace, inject
from gatecore.upstream.exchange import ExchangeHandle
from gatecore.upstream.http1 import Http1Connection
from gatecore.upstream.pool import ConnectionPool
from gatecore.upstream.timeouts import Timeouts


class TracedConnectionPool(ConnectionPool):
    __slots__ = ()

    def exchange(
        self, ctx: ExchangeHandle, head: bytes, body: bytes, timeouts: Timeouts
    ) -> Coroutine[Any, Any, Http1Connection]:
        trace = ctx.trace if isinstance(ctx, RequestContext) else None
        if trace is None:  # not a client's request (the engines' /metrics polls)
            return super().exchange(ctx, head, body, timeouts)
        if isinstance(trace, UnsampledTrace):  # no span; the context still goes upstream
            return super().exchange(ctx, inject(head, trace.header), body, timeouts)
        assert isinstance(ctx, RequestContext) and isinstance(trace, RequestTrace)
        return self._traced(ctx, trace, head, body, timeouts)

    async def _traced(
        self, ctx: RequestContext, trace: RequestTrace, head: bytes, body: bytes, timeouts: Timeouts
    ) -> Http1Connection:
        attempt = trace.start_attempt(ctx, self.origin)
        try:
            conn = await super().exchange(ctx, inject(head, attempt.traceparent), body, timeouts)
        except BaseException as exc:
            trace.failed(attempt, exc)
            raise
        trace.answered(attempt, conn.status)
        return conn
