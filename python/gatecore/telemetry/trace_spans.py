"""One request's spans: the server span, one client span per upstream attempt, and the stage spans.

The server span starts when the request arrives (its parent the client's `traceparent`, if any).
Each upstream attempt (a retry, a fallback, a hedge) gets a client span the moment its request is
written, and that span's context goes upstream as `traceparent` (telemetry/traced_pool.py). The
stage spans (auth, decode, route, limits, …, relay) are made when the request ends, from the marks
every request takes anyway (`RequestContext.stage_ends`), with their real start and end times: the
stages themselves run exactly as they do untraced.

A span is a few plain values until it ends; then it is encoded at once into the worker's export
queue (`_core.OtlpSpans`). Times are `perf_counter_ns` readings, moved to epoch time by the
request's `offset`.

Attributes follow the OpenTelemetry GenAI and HTTP semantic conventions; gatecore's own are
`gatecore.*`. Only names, ids, counts and times: never a key (its display prefix at most), a prompt
or an answer.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from gatecore._core import OtlpSpans
from gatecore.request import RequestContext
from gatecore.telemetry.trace_context import traceparent_line

if TYPE_CHECKING:
    from gatecore.upstream.pool import Origin

# The conventions' gen_ai.operation.name per endpoint.
OPERATIONS = {
    "chat": "chat",
    "messages": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}
# OTLP's Span.SpanKind and Status.StatusCode values.
INTERNAL, SERVER, CLIENT = 1, 2, 3
ERROR = 2
# OTLP's Span.flags above the W3C trace flags: whether the parent is remote is known; it is.
HAS_IS_REMOTE = 0x100
IS_REMOTE = 0x200


def inject(head: bytes, lines: bytes) -> bytes:
    """An upstream request head (ending in a blank line) with trace context header `lines` added."""
    return head[:-2] + lines + b"\r\n"


def _relayable(status: int) -> bool:
    # An attempt whose answer's head has another status is retried: it cannot be the one relayed.
    return status < 429 or 429 < status < 500


class UpstreamAttempt:
    """The client span of one upstream request, open until `RequestTrace` ends it."""

    __slots__ = (
        "attributes",
        "deployment",
        "head_ns",
        "name",
        "open",
        "span_id",
        "start_ns",
        "status",
        "traceparent",
    )

    def __init__(
        self, span_id: int, name: str, attributes: dict[str, Any], deployment: str, traceparent: bytes
    ):
        self.span_id = span_id
        self.name = name
        self.attributes = attributes
        self.deployment = deployment
        self.start_ns = time.perf_counter_ns()
        self.head_ns = 0  # perf_counter_ns when the answer's head arrived (0: it did not)
        self.status = 0
        self.open = True  # not ended yet: in flight, or its answer may be the one relayed
        self.traceparent = traceparent  # this span's trace context header lines


class UnsampledTrace:
    """The trace context of a request that is not sampled: only the header lines its upstream
    requests carry (its trace id, a span id of its own, the sampled flag off), made once."""

    __slots__ = ("header",)
    sampled = False

    def __init__(self, header: bytes):
        self.header = header

    def hex_ids(self) -> tuple[str, str]:
        """(trace id, span id) in hex, as the access log shows them: read from the header line
        (`traceparent: 00-<trace id>-<span id>-<flags>`)."""
        header = self.header
        return header[16:48].decode(), header[49:65].decode()


class RequestTrace:
    """The trace context of one sampled request, and its spans until `Tracing.record` ends them."""

    __slots__ = (
        "_hex_ids",
        "attempts",
        "flags",
        "offset",
        "parent_id",
        "path",
        "provider_kinds",
        "span_flags",
        "span_id",
        "spans",
        "trace_id",
        "trace_state",
    )
    sampled = True

    def __init__(
        self,
        spans: OtlpSpans,
        path: str,
        trace_id: int,
        parent_id: int,
        flags: int,
        trace_state: str,
        offset: int,
        provider_kinds: dict[str, str],
    ):
        self.spans = spans
        self.path = path  # the request's, for the server span
        self.trace_id = trace_id
        self.span_id = spans.span_id()  # the server span's, the parent of every other span
        self.parent_id = parent_id  # the client's span (0: none, a new trace)
        self.flags = flags  # W3C trace flags; bit 0 (sampled) is set
        self.trace_state = trace_state
        self.span_flags = (flags & 0xFF) | HAS_IS_REMOTE  # OTLP's flags of the spans under ours
        self.offset = offset  # time.time_ns() - time.perf_counter_ns(), for the spans' timestamps
        self.provider_kinds = provider_kinds
        self.attempts: list[UpstreamAttempt] = []
        self._hex_ids: tuple[str, str] | None = None

    def hex_ids(self) -> tuple[str, str]:
        """(trace id, server span id) in hex, as the access log and the exemplars show them
        (formatted once, for both)."""
        ids = self._hex_ids
        if ids is None:
            ids = self._hex_ids = (f"{self.trace_id:032x}", f"{self.span_id:016x}")
        return ids

    def start_attempt(self, ctx: RequestContext, origin: Origin) -> UpstreamAttempt:
        """A client span for the upstream request about to be written for `ctx` (the request, or a
        hedge's copy of it)."""
        deployment = ctx.deployment
        provider = deployment.provider.name if deployment is not None else ""
        operation = OPERATIONS.get(ctx.endpoint.name, ctx.endpoint.name)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": self.provider_kinds.get(provider, provider),
            "gen_ai.request.model": ctx.upstream_model,
            "server.address": origin.host,
            "server.port": origin.port,
            "gatecore.provider": provider,
            "gatecore.deployment": ctx.deployment_id,
            "gatecore.attempt": len(self.attempts) + 1,
        }
        if self.attempts and ctx.attempts == 1:
            # A second exchange before any retry: the hedge, run on a copy of the first attempt's
            # context (retries and fallbacks count in ctx.attempts first).
            attributes["gatecore.hedge"] = True
        span_id = self.spans.span_id()
        header = traceparent_line(self.trace_id, span_id, self.flags, self.trace_state)
        attempt = UpstreamAttempt(
            span_id, f"{operation} {ctx.upstream_model}", attributes, ctx.deployment_id, header
        )
        self.attempts.append(attempt)
        return attempt

    def answered(self, attempt: UpstreamAttempt, status: int) -> None:
        """The attempt's answer head arrived. A status the attempt loop retries ends it now; any other
        may be relayed, so its span stays open until the request ends."""
        now = time.perf_counter_ns()
        attempt.head_ns = now
        attempt.status = status
        attempt.attributes["http.response.status_code"] = status
        if status >= 400:
            attempt.attributes["error.type"] = str(status)
        if not _relayable(status):
            self._end_attempt(attempt, now)

    def failed(self, attempt: UpstreamAttempt, exc: BaseException) -> None:
        """The attempt ended without an answer (connection error, timeout, cancelled hedge)."""
        now = time.perf_counter_ns()
        code = getattr(exc, "code", None)
        if code is None:  # not a GatewayError: the task was cancelled (a hedge that lost, a gone client)
            attempt.attributes["gatecore.cancelled"] = True
            self._end_attempt(attempt, now)
        else:
            attempt.attributes["error.type"] = str(code)
            self._end_attempt(attempt, now, str(code))

    def end_attempts(self, ctx: RequestContext, finished: int) -> int:
        """End the spans still open: the attempt relayed ends with the request, a hedge that lost at its
        head. Returns when the relayed answer's head arrived (0 when none was)."""
        relayed_head = 0
        for attempt in self.attempts:
            if not attempt.open or not attempt.head_ns:
                continue  # ended, or still in flight (a cancelled hedge ends when its task does)
            if attempt.deployment == ctx.deployment_id and not relayed_head:
                relayed_head = attempt.head_ns
                if ctx.error_code is not None and attempt.status < 400:  # broke after its head
                    attempt.attributes["error.type"] = ctx.error_code
                    self._end_attempt(attempt, finished, ctx.error_code)
                else:
                    self._end_attempt(attempt, finished)
            else:
                attempt.attributes["gatecore.dropped"] = True
                self._end_attempt(attempt, attempt.head_ns)
        if not relayed_head:  # the last answer an upstream gave, an error relayed as it was
            relayed_head = max((a.head_ns for a in self.attempts), default=0)
        return relayed_head

    def _end_attempt(self, attempt: UpstreamAttempt, end_ns: int, error: str | None = None) -> None:
        attempt.open = False
        offset = self.offset
        # An error answer (status ≥ 400) is an error span without a message; a failure names its code.
        failed = error is not None or attempt.status >= 400
        self.spans.add(
            self.trace_id,
            attempt.span_id,
            self.span_id,
            attempt.name,
            CLIENT,
            attempt.start_ns + offset,
            end_ns + offset,
            attempt.attributes,
            ERROR if failed else 0,
            error or "",
            self.trace_state,
            self.span_flags,
        )
