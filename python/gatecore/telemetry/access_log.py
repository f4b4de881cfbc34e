"""One JSON line per request on stdout, written in batches off the request path.

Lines carry ids, names, token counts and timings only (with tracing on, the request's trace and span
ids too, so a line leads to its trace): never a key, never prompt text, except the
bodies of keys or teams that opted into body logging (body_log.py: size-capped, the key scrubbed,
redacted when a redactor is configured).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import stat
import sys
import time
from typing import BinaryIO

import orjson

from gatecore._core import JsonLines
from gatecore.durations import ms
from gatecore.request import RequestContext, Usage
from gatecore.telemetry.body_log import Redactor, body_fields

_FLUSH_DELAY = 0.05  # seconds: lines of a burst are written together
# Lines are written once this many bytes wait, whatever the delay: a buffer that stays in the CPU's
# cache. 50 ms of lines at 15,000 req/s were 200 KB, copied into a bytes object before the write;
# metrics + access log then cost 0.93x of their absence in one server, 0.95-0.96x with this (64 KiB:
# 0.94x), before the recorders ran in batches (Recording.finished).
_FLUSH_BYTES = 16 * 1024
# Lines that wait for a pipe nobody reads (a stalled log collector) are kept up to this many bytes,
# then new ones are dropped and counted: the log never blocks the event loop nor grows without bound.
_BACKLOG_BYTES = 16 * 1024 * 1024
_DROP_WARN_S = 10.0  # at most one warning about dropped lines per this many seconds
_CLOSE_WAIT_S = 1.0  # at shutdown, how long lines waiting for a stalled pipe still get
log = logging.getLogger("gatecore.access_log")


# A line's fields, in order. `key_prefix`: the few characters of the key that are safe to show
# (`sk-ab…`), never the key; `cost_usd`: priced by the ledger's recorder, which runs first.
FIELDS = (
    "ts",
    "request_id",
    "trace_id",
    "span_id",
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
    "guardrails",  # what the guardrails did: `guard:type:action=count,...` (never the matched text)
)
_wall_ns = time.time_ns


def guardrail_summary(ctx: RequestContext) -> str | None:
    """`guard:type:action=count,...` of what the request's guardrails did (None: nothing)."""
    guard = ctx.guard
    if guard is None or not guard.counts:
        return None
    return ",".join(f"{g}:{kind}:{action}={n}" for (g, kind, action), n in guard.counts.items())


class _NoKey:
    """What the log shows of the key of a request that had none."""

    __slots__ = ()
    name = prefix = run_id = None


_NO_KEY = _NoKey()
_NO_USAGE = Usage()
_NO_TRACE: tuple[None, None] = (None, None)
# Fields given as integer nanoseconds and shown in seconds ("s") or milliseconds ("ms").
UNITS = {"ts": "s", "latency_ms": "ms", "ttft_ms": "ms", "overhead_ms": "ms"}


class AccessLog:
    """Queues a line per finished request and writes them in batches: every 16 KiB, or 50 ms after
    the first line of a batch."""

    __slots__ = (
        "_dropped",
        "_fd",
        "_handle",
        "_out",
        "_pending",
        "_warned_at",
        "body_log_bytes",
        "redactor",
    )

    def __init__(self, out: BinaryIO | None = None, body_log_bytes: int = 0):
        self._out = out if out is not None else sys.stdout.buffer
        # Lines go straight from the Rust buffer to the file descriptor when there is one; to a
        # non-blocking one of their own when it is a pipe (see _log_fd).
        self._fd = _log_fd(self._out)
        self._dropped = 0  # lines dropped since the last warning
        self._warned_at = 0.0
        self.body_log_bytes = body_log_bytes
        # Rewrites logged bodies (None: no redaction); the guardrails' PII matcher is set here.
        self.redactor: Redactor | None = None
        # Lines not yet written, each formatted in Rust from a tuple of its values: 1 µs a line in
        # the server, against 3 for a msgspec Struct and 4+ for a dict through orjson.
        self._pending = JsonLines(list(FIELDS), [UNITS.get(field, "") for field in FIELDS])
        self._handle: asyncio.TimerHandle | None = None

    def record(self, ctx: RequestContext, finished_ns: int) -> None:
        # Stand-ins for a request without usage or key: no test per field.
        usage, key = ctx.usage or _NO_USAGE, ctx.key or _NO_KEY
        first_byte, started = ctx.first_byte_ns, ctx.started
        trace = ctx.trace  # with tracing on: the request's trace and span, sampled or not
        trace_id, span_id = trace.hex_ids() if trace is not None else _NO_TRACE
        line = (
            _wall_ns(),
            ctx.request_id,
            trace_id,
            span_id,
            ctx.endpoint.name,
            key.name,
            key.prefix,
            ctx.client_model,
            ctx.deployment_id or None,
            ctx.status,
            ctx.attempts,
            ctx.error_code,
            ctx.stream,
            ctx.streamed_events,
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_tokens,
            usage.source,
            ctx.cost_usd,
            ctx.client_gone,
            finished_ns - started,
            first_byte - started if first_byte else None,
            finished_ns - started - ctx.upstream_ns,
            ctx.run_id or key.run_id,
            guardrail_summary(ctx),
        )
        pending = self._pending
        if ctx.body_capture is None:
            waiting = pending.add(line)
        else:  # only keys or teams that opted into body logging
            fields: dict[str, object] = dict(zip(FIELDS, line, strict=True))
            for name, unit in UNITS.items():
                fields[name] = _shown(fields[name], unit)
            fields.update(body_fields(ctx, self.body_log_bytes, self.redactor))
            waiting = pending.add_raw(orjson.dumps(fields))
        if waiting >= _FLUSH_BYTES:
            self.flush()
            if len(pending) > _BACKLOG_BYTES:
                self._drop()
        elif self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(_FLUSH_DELAY, self._flush_due)

    async def aclose(self) -> None:
        self.flush()
        deadline = time.monotonic() + _CLOSE_WAIT_S
        while self._pending and time.monotonic() < deadline:  # a pipe that is slow to drain
            await asyncio.sleep(0.01)
            self.flush()
        if self._pending:
            self._dropped += self._pending.take().count(b"\n")
        if self._dropped:
            log.warning("access log: %d lines dropped (stdout did not take them)", self._dropped)
        if self._fd is not None and self._fd != _fileno(self._out):
            os.close(self._fd)
            self._fd = None

    def _drop(self) -> None:
        """The pipe has taken nothing while the backlog filled: drop what waits, say so now and then.
        The first line stays: the pipe may hold its beginning (a write can stop mid-line)."""
        waiting = self._pending.take()
        first = waiting.find(b"\n")
        self._pending.add_raw(waiting[:first])
        self._dropped += waiting.count(b"\n") - 1
        now = time.monotonic()
        if now - self._warned_at >= _DROP_WARN_S:
            log.warning("access log: %d lines dropped (stdout does not take them)", self._dropped)
            self._warned_at, self._dropped = now, 0

    def _flush_due(self) -> None:
        self._handle = None
        self.flush()
        if self._pending:  # a pipe that took only part: try again, traffic or not
            self._handle = asyncio.get_running_loop().call_later(_FLUSH_DELAY, self._flush_due)

    def flush(self) -> None:
        """Write the waiting lines now."""
        if not self._pending:
            return
        try:
            if self._fd is None:
                self._out.write(self._pending.take())
                self._out.flush()
            else:
                self._out.flush()  # anything written through the file object goes first
                self._pending.write_to(self._fd)
        except (OSError, ValueError):  # stdout closed: the log is best effort, requests go on
            pass


def _fileno(out: BinaryIO) -> int | None:
    try:
        return out.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


def _log_fd(out: BinaryIO) -> int | None:
    """The descriptor lines are written to. For a pipe (a container's log collector), a non-blocking
    one of our own on the same pipe, opened anew so that the shared one stays blocking for everyone
    else writing to stdout: a stalled reader cannot block the event loop. For a file, a terminal or
    a socket (which cannot be opened anew), the stream's own."""
    fd = _fileno(out)
    if fd is None:
        return None
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        pass  # no /proc, or no reader yet: blocking writes, as before
    return fd


def _shown(ns: object, unit: str) -> object:
    """A nanosecond field as `JsonLines` shows it: ms to the µs (half up), s to the ms."""
    if not isinstance(ns, int):
        return ns
    return ms(ns) if unit == "ms" else ns // 1_000_000 / 1000
