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

from gatecore.ledger.body_log import Redactor, body_fields
from gatecore.request import RequestContext

_FLUSH_DELAY = 0.05  # seconds: lines of a burst are written together


class AccessLog:
    """Queues a line per finished request and flushes them shortly after, in one write."""

    __slots__ = ("_handle", "_lines", "_out", "body_log_bytes", "redactor")

    def __init__(self, out: BinaryIO | None = None, body_log_bytes: int = 0):
        self._out = out if out is not None else sys.stdout.buffer
        self.body_log_bytes = body_log_bytes
        # Rewrites logged bodies (None: no redaction); the guardrails' PII matcher is set here.
        self.redactor: Redactor | None = None
        self._lines: list[bytes] = []
        self._handle: asyncio.TimerHandle | None = None

    def record(self, ctx: RequestContext, finished_ns: int) -> None:
        usage, key, first_byte = ctx.usage, ctx.key, ctx.first_byte_ns
        line = {
            "ts": round(time.time(), 3),
            "request_id": ctx.request_id,
            "endpoint": ctx.endpoint.name,
            "key": key.name if key is not None else None,
            # The few characters of the key that are safe to show (`sk-ab…`), never the key.
            "key_prefix": key.prefix if key is not None else None,
            "model": ctx.client_model,
            "deployment": ctx.deployment_id or None,
            "status": ctx.status,
            "attempts": ctx.attempts,
            "error": ctx.error_code,
            "streamed": ctx.stream,
            "events": ctx.streamed_events,
            "input_tokens": usage.input_tokens if usage else 0,
            "output_tokens": usage.output_tokens if usage else 0,
            "cached_tokens": usage.cached_tokens if usage else 0,
            "usage_source": usage.source if usage else "none",
            "cost_usd": ctx.cost_usd,  # priced by the ledger's recorder, which runs first
            "client_gone": ctx.client_gone,
            "latency_ms": round((finished_ns - ctx.started) / 1e6, 3),
            "ttft_ms": round((first_byte - ctx.started) / 1e6, 3) if first_byte else None,
            "overhead_ms": round((finished_ns - ctx.started - ctx.upstream_ns) / 1e6, 3),
            "run_id": ctx.run_id or (key.run_id if key is not None else None),
        }
        if ctx.body_capture is not None:  # only keys or teams that opted into body logging
            line.update(body_fields(ctx, self.body_log_bytes, self.redactor))
        self._lines.append(orjson.dumps(line) + b"\n")
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(_FLUSH_DELAY, self.flush)

    async def aclose(self) -> None:
        self.flush()

    def flush(self) -> None:
        self._handle = None
        if not self._lines:
            return
        data = b"".join(self._lines)
        self._lines.clear()
        try:
            self._out.write(data)
            self._out.flush()
        except (OSError, ValueError):  # stdout closed: the log is best effort, requests go on
            pass
