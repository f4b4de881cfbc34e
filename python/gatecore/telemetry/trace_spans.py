"""One request's spans: the server span, one client span per upstream attempt, and the stage spans.

The server span starts when the request arrives (its parent the client's `traceparent`, if any).
Each upstream attempt (a retry, a fallback, a hedge) gets a client span the moment its request is
written, and that span's context goes upstream as `traceparent` (telemetry/traced_pool.py). The
stage spans (auth, decode, route, limits, …, relay) are made when the request ends, from the marks
every request takes anyway (`RequestContext.stage_ends`), with their real start and end times: the
stages themselves run exactly as they do untraced.

Attributes follow the OpenTelemetry GenAI and HTTP semantic conventions; gatecore's own are
`gatecore.*`. Only names, ids, counts and times: never a key (its display prefix at most), a prompt
or an answer.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context

from gatecore.request import RequestContext

if TYPE_CHECKING:
    from gatecore.upstream.pool import Origin

# The conventions' gen_ai.operation.name per endpoint.
OPERATIONS = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings"}
# An attempt whose answer's head has one of these statuses is not retried: it may be the one relayed.
_ERROR = Status(StatusCode.ERROR)


def _relayable(status: int) -> bool:
    return status < 429 or 429 < status < 500


class UpstreamAttempt:
    """The client span of one upstream request."""

    __slots__ = ("deployment", "head_ns", "open", "span", "status", "traceparent")

    def __init__(self, span: Span, deployment: str):
        self.span = span
        self.deployment = deployment
        self.head_ns = 0  # perf_counter_ns when the answer's head arrived (0: it did not)
        self.status = 0
        self.open = True  # not ended yet: in flight, or its answer may be the one relayed
        self.traceparent = trace_headers(span)

    def inject(self, head: bytes) -> bytes:
        """The request head (ending in a blank line) with this span's trace context headers added."""
        return head[:-2] + self.traceparent + b"\r\n"


def trace_headers(span: Span) -> bytes:
    """`span`'s context as W3C trace context header lines: version 00, trace id, span id, flags
    (bit 0: sampled; bit 1: the trace id is random, Trace Context level 2), and the trace state."""
    context = span.get_span_context()
    header = b"traceparent: 00-%032x-%016x-%02x\r\n" % (
        context.trace_id,
        context.span_id,
        context.trace_flags,
    )
    state = context.trace_state.to_header() if context.trace_state else ""
    if state:
        header += b"tracestate: %s\r\n" % state.encode("latin-1")
    return header


class RequestTrace:
    """The spans of one request, ended by `Tracing.record` when the request is over."""

    __slots__ = ("attempts", "context", "offset", "provider_kinds", "recording", "span", "tracer")

    def __init__(self, tracer: Tracer, span: Span, offset: int, provider_kinds: dict[str, str]):
        self.tracer = tracer
        self.span = span
        # Not sampled: no other span is made; upstreams get the request's (non-recording) span context.
        self.recording = span.is_recording()
        # The server span's context, the parent of every other span.
        self.context: Context | None = set_span_in_context(span) if self.recording else None
        self.offset = offset  # time.time_ns() - time.perf_counter_ns(), for the spans' timestamps
        self.provider_kinds = provider_kinds
        self.attempts: list[UpstreamAttempt] = []

    def unsampled_inject(self, head: bytes) -> bytes:
        """An unsampled request's head with its trace context (sampled flag off) added."""
        return head[:-2] + trace_headers(self.span) + b"\r\n"

    def start_attempt(self, ctx: RequestContext, origin: Origin) -> UpstreamAttempt:
        """A client span for the upstream request about to be written for `ctx` (the request, or a
        hedge's copy of it); only for a sampled request."""
        assert self.context is not None
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
        span = self.tracer.start_span(
            f"{operation} {ctx.upstream_model}",
            self.context,
            SpanKind.CLIENT,
            attributes,
            start_time=time.perf_counter_ns() + self.offset,
        )
        attempt = UpstreamAttempt(span, ctx.deployment_id)
        self.attempts.append(attempt)
        return attempt

    def answered(self, attempt: UpstreamAttempt, status: int) -> None:
        """The attempt's answer head arrived. A status the attempt loop retries ends it now; any other
        may be relayed, so its span stays open until the request ends."""
        now = time.perf_counter_ns()
        attempt.head_ns = now
        attempt.status = status
        span = attempt.span
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            span.set_attribute("error.type", str(status))
            span.set_status(_ERROR)
        if not _relayable(status):
            attempt.open = False
            span.end(now + self.offset)

    def failed(self, attempt: UpstreamAttempt, exc: BaseException) -> None:
        """The attempt ended without an answer (connection error, timeout, cancelled hedge)."""
        attempt.open = False
        span = attempt.span
        code = getattr(exc, "code", None)
        if code is None:  # not a GatewayError: the task was cancelled (a hedge that lost, a gone client)
            span.set_attribute("gatecore.cancelled", True)
        else:
            span.set_attribute("error.type", str(code))
            span.set_status(Status(StatusCode.ERROR, str(code)))
        span.end(time.perf_counter_ns() + self.offset)

    def end_attempts(self, ctx: RequestContext, finished: int) -> int:
        """End the spans still open: the attempt relayed ends with the request, a hedge that lost at its
        head. Returns when the relayed answer's head arrived (0 when none was)."""
        relayed_head = 0
        for attempt in self.attempts:
            if not attempt.open or not attempt.head_ns:
                continue  # ended, or still in flight (a cancelled hedge ends when its task does)
            attempt.open = False
            if attempt.deployment == ctx.deployment_id and not relayed_head:
                relayed_head = attempt.head_ns
                if ctx.error_code is not None and attempt.status < 400:  # broke after its head
                    attempt.span.set_status(Status(StatusCode.ERROR, ctx.error_code))
                    attempt.span.set_attribute("error.type", ctx.error_code)
                attempt.span.end(finished + self.offset)
            else:
                attempt.span.set_attribute("gatecore.dropped", True)
                attempt.span.end(attempt.head_ns + self.offset)
        if not relayed_head:  # the last answer an upstream gave, an error relayed as it was
            relayed_head = max((a.head_ns for a in self.attempts), default=0)
        return relayed_head
