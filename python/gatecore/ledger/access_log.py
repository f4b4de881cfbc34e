"""One JSON line per request on stdout, written in batches off the request path.

Lines carry ids, names, token counts and timings only: never a key, never prompt text, except the
bodies of keys or teams that opted into body logging (body_log.py: size-capped, the key scrubbed,
redacted when a redactor is configured).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import BinaryIO

import orjson

from gatecore._core import JsonLines
from gatecore.ledger.body_log import Redactor, body_fields
from gatecore.ledger.row import ms
from gatecore.request import RequestContext

_FLUSH_DELAY = 0.05  # seconds: lines of a burst are written together


# A line's fields, in order. `key_prefix`: the few characters of the key that are safe to show
# (`sk-ab…`), never the key; `cost_usd`: priced by the ledger's recorder, which runs first.
FIELDS = (
    "ts",
    "request_id",
    "endpoint",
    "key",
    "key_prefix",
    "model",
    "deployment",
    "status",
    "attempts",
    "error",
    "streamed",
    "events",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "usage_source",
    "cost_usd",
    "client_gone",
    "latency_ms",
    "ttft_ms",
    "overhead_ms",
    "run_id",
)


class AccessLog:
    """Queues a line per finished request and flushes them shortly after, in one write."""

    __slots__ = ("_handle", "_out", "_pending", "body_log_bytes", "redactor")

    def __init__(self, out: BinaryIO | None = None, body_log_bytes: int = 0):
        self._out = out if out is not None else sys.stdout.buffer
        self.body_log_bytes = body_log_bytes
        # Rewrites logged bodies (None: no redaction); the guardrails' PII matcher is set here.
        self.redactor: Redactor | None = None
        # Lines not yet written, each formatted in Rust from a tuple of its values: 1 µs a line in
        # the server, against 3 for a msgspec Struct and 4+ for a dict through orjson.
        self._pending = JsonLines(list(FIELDS))
        self._handle: asyncio.TimerHandle | None = None

    def record(self, ctx: RequestContext, finished_ns: int) -> None:
        usage, key, first_byte, started = ctx.usage, ctx.key, ctx.first_byte_ns, ctx.started
        line = (
            time.time_ns() // 1_000_000 / 1000,
            ctx.request_id,
            ctx.endpoint.name,
            key.name if key is not None else None,
            key.prefix if key is not None else None,
            ctx.client_model,
            ctx.deployment_id or None,
            ctx.status,
            ctx.attempts,
            ctx.error_code,
            ctx.stream,
            ctx.streamed_events,
            usage.input_tokens if usage else 0,
            usage.output_tokens if usage else 0,
            usage.cached_tokens if usage else 0,
            usage.source if usage else "none",
            ctx.cost_usd,
            ctx.client_gone,
            ms(finished_ns - started),
            ms(first_byte - started) if first_byte else None,
            ms(finished_ns - started - ctx.upstream_ns),
            ctx.run_id or (key.run_id if key is not None else None),
        )
        if ctx.body_capture is None:
            self._pending.add(line)
        else:  # only keys or teams that opted into body logging
            fields = dict(zip(FIELDS, line, strict=True))
            fields.update(body_fields(ctx, self.body_log_bytes, self.redactor))
            self._pending.add_raw(orjson.dumps(fields))
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(_FLUSH_DELAY, self.flush)

    async def aclose(self) -> None:
        self.flush()

    def flush(self) -> None:
        self._handle = None
        if not self._pending:
            return
        data = self._pending.take()
        try:
            self._out.write(data)
            self._out.flush()
        except (OSError, ValueError):  # stdout closed: the log is best effort, requests go on
            pass
