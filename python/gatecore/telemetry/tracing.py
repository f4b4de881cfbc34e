"""OpenTelemetry traces (`telemetry.tracing`): this worker's tracer provider, OTLP/HTTP exporter and
batch span processor, a server span per inference request and its children.

This module is imported only when tracing is enabled (pipeline/gateway.py), so with tracing off
opentelemetry is never loaded and a request pays one attribute test (`gateway.tracing is not None`).
Each worker builds its own provider when its gateway is built, after granian started the worker
process: the processor's export thread and the exporter's HTTP session belong to that process. The
request path only creates spans and appends ended ones to the processor's queue; encoding and the
HTTP POST to the collector happen on the processor's thread. Shutdown flushes what is queued.

Sampling is parent-based: a client's `traceparent` decides (sampled flag), else `sample_ratio` of the
trace ids. An unsampled request still gets span contexts (non-recording), so the upstream receives a
`traceparent` with the sampled flag off, as W3C trace context asks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gatecore import __version__
from gatecore.config.telemetry import TracingConfig
from gatecore.request import RequestContext
from gatecore.telemetry.trace_spans import OPERATIONS, RequestTrace

DEFAULT_ENDPOINT = "http://127.0.0.1:4318/v1/traces"
# gen_ai.provider.name's well-known values, per provider kind; other kinds are named by their kind.
PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "cohere": "cohere",
    "gemini": "gcp.gemini",
    "mistral": "mistral_ai",
    "echo": "gatecore.echo",
}
log = logging.getLogger("gatecore.telemetry")


def exporter_endpoint(configured: str | None) -> str:
    """The traces URL: the config's, else the OTLP environment variables', else the local collector."""
    if configured:
        return configured
    traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if traces:
        return traces
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return f"{base.rstrip('/')}/v1/traces" if base else DEFAULT_ENDPOINT


class _QueueFullOnce(logging.Filter):
    """Lets the batch processor's "Queue full, dropping Span." through once a minute: it is logged per
    dropped span, which under overload would cost more than the spans themselves."""

    def __init__(self) -> None:
        super().__init__()
        self.next_at = 0.0
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("Queue full"):
            return True
        self.dropped += 1
        now = time.monotonic()
        if now < self.next_at:
            return False
        self.next_at = now + 60.0
        record.msg = "span queue full (telemetry.tracing.max_queue_size): %d spans dropped so far"
        record.args = (self.dropped,)
        return True


def _quiet_queue_full() -> None:
    processor_log = logging.getLogger("opentelemetry.sdk._shared_internal")
    if not any(isinstance(f, _QueueFullOnce) for f in processor_log.filters):
        processor_log.addFilter(_QueueFullOnce())


class Tracing:
    """A Recorder (pipeline/gateway.py) that ends each request's spans; `begin` starts them."""

    __slots__ = ("_propagator", "provider", "provider_kinds", "stage_names", "stage_spans", "tracer")

    def __init__(self, config: TracingConfig, provider_kinds: dict[str, str], stage_names: tuple[str, ...]):
        endpoint = exporter_endpoint(config.endpoint)
        # Header values are never logged (the exporter logs statuses and reasons only).
        exporter = OTLPSpanExporter(
            endpoint=endpoint, headers=config.headers or None, timeout=config.timeout_s
        )
        service = config.service_name or os.environ.get("OTEL_SERVICE_NAME") or "gatecore"
        self.provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
            resource=Resource.create({"service.name": service, "service.version": __version__}),
        )
        self.provider.add_span_processor(
            BatchSpanProcessor(
                exporter,
                max_queue_size=config.max_queue_size,
                schedule_delay_millis=config.schedule_delay_s * 1000,
                max_export_batch_size=config.batch_size,
            )
        )
        self.tracer = self.provider.get_tracer("gatecore", __version__)
        self._propagator = TraceContextTextMapPropagator()
        # Configured provider name → gen_ai.provider.name.
        self.provider_kinds = {name: PROVIDER_NAMES.get(kind, kind) for name, kind in provider_kinds.items()}
        self.stage_names = stage_names  # auth, decode, then the pipeline's (RequestContext.stage_ends)
        self.stage_spans = config.stage_spans
        _quiet_queue_full()
        parts = urlsplit(endpoint)  # logged without credentials a URL may carry (userinfo, query)
        shown = parts._replace(netloc=parts.netloc.rpartition("@")[2], query="").geturl()
        log.info("tracing on: OTLP/HTTP to %s, sample ratio %g", shown, config.sample_ratio)

    def begin(self, ctx: RequestContext, path: str, headers: Any) -> None:
        """Start the request's server span, a child of the client's `traceparent` when it sent one."""
        offset = time.time_ns() - time.perf_counter_ns()
        parent = None
        traceparent = headers.get("traceparent")
        if traceparent is not None:
            carrier = {"traceparent": traceparent}
            tracestate = headers.get("tracestate")
            if tracestate is not None:
                carrier["tracestate"] = tracestate
            parent = self._propagator.extract(carrier)
        operation = OPERATIONS.get(ctx.endpoint.name, ctx.endpoint.name)
        span = self.tracer.start_span(
            operation,
            parent,
            SpanKind.SERVER,
            {
                "http.request.method": "POST",
                "url.path": path,
                "http.route": path,
                "gen_ai.operation.name": operation,
                "gatecore.request_id": ctx.request_id,
            },
            start_time=ctx.started + offset,
        )
        ctx.trace = RequestTrace(self.tracer, span, offset, self.provider_kinds)

    def record(self, ctx: RequestContext, finished_ns: int) -> None:
        """End the request's spans: the stages', the attempts' still open, the relay's, the server's."""
        trace = ctx.trace
        if trace is None:
            return
        span = trace.span
        if not trace.recording:  # not sampled: nothing to export
            return
        offset = trace.offset
        names = self.stage_names
        ends = ctx.stage_ends
        last = ctx.started
        for name, end in zip(names, ends, strict=False):
            if self.stage_spans:
                self._child(trace, name, last, end)
            last = end
        failed = ctx.status >= 400 or ctx.status == 0
        if len(ends) < len(names) and failed and self.stage_spans:
            # The stage that refused the request (or failed on its body): it ran until the error.
            stage = self._child(trace, names[len(ends)], last, finished_ns, end=False)
            stage.set_attribute("error.type", ctx.error_code or "internal_error")
            stage.set_status(Status(StatusCode.ERROR, ctx.error_code or "internal_error"))
            stage.end(finished_ns + offset)
        relayed_head = trace.end_attempts(ctx, finished_ns)
        if len(ends) == len(names):
            if relayed_head:
                self._child(trace, "relay", relayed_head, finished_ns)
            elif not trace.attempts and 0 < ctx.status < 400:  # answered in-process (echo)
                self._child(trace, "relay", last, finished_ns)
        span.set_attributes(self._attributes(ctx, finished_ns))
        if ctx.client_model:
            span.update_name(f"{OPERATIONS.get(ctx.endpoint.name, ctx.endpoint.name)} {ctx.client_model}")
        if ctx.error_code is not None:
            span.set_attribute("error.type", ctx.error_code)
        # HTTP server spans: 5xx is an error; a 4xx is the client's (error.type tells which).
        broken_stream = ctx.error_code is not None and 0 < ctx.status < 400
        if ctx.status >= 500 or ctx.status == 0 or broken_stream:
            span.set_status(Status(StatusCode.ERROR, ctx.error_code or "internal_error"))
        span.end(finished_ns + offset)

    def _child(self, trace: RequestTrace, name: str, start: int, stop: int, end: bool = True) -> Any:
        span = self.tracer.start_span(name, trace.context, SpanKind.INTERNAL, start_time=start + trace.offset)
        if end:
            span.end(stop + trace.offset)
        return span

    def _attributes(self, ctx: RequestContext, finished_ns: int) -> dict[str, Any]:
        """The server span's attributes known once the request is over."""
        attributes: dict[str, Any] = {
            "http.response.status_code": ctx.status or 500,
            "gatecore.attempts": ctx.attempts,
            "gatecore.stream": ctx.stream,
            "gatecore.overhead_ms": round((finished_ns - ctx.started - ctx.upstream_ns) / 1e6, 3),
        }
        if ctx.client_model:
            attributes["gen_ai.request.model"] = ctx.client_model
        if ctx.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = ctx.max_tokens
        if ctx.route is not None:
            attributes["gatecore.model"] = ctx.route.name
        deployment = ctx.deployment
        if deployment is not None:
            provider = deployment.provider.name
            kind = self.provider_kinds.get(provider, provider)
            attributes["gen_ai.provider.name"] = kind
            attributes["gen_ai.system"] = kind  # the conventions' earlier name, still read by some backends
            attributes["gen_ai.response.model"] = ctx.upstream_model
            attributes["gatecore.provider"] = provider
            attributes["gatecore.deployment"] = ctx.deployment_id
        usage = ctx.usage
        if usage is not None:
            attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
            attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
            attributes["gatecore.usage.cached_tokens"] = usage.cached_tokens
            attributes["gatecore.usage.source"] = usage.source
        if ctx.finish_reason is not None:
            attributes["gen_ai.response.finish_reasons"] = (ctx.finish_reason,)
        key = ctx.key
        if key is not None:
            attributes["gatecore.key_prefix"] = key.prefix  # its display prefix, never the key
        if ctx.first_byte_ns:
            attributes["gatecore.time_to_first_byte_ms"] = round((ctx.first_byte_ns - ctx.started) / 1e6, 3)
        if ctx.cost_usd:
            attributes["gatecore.cost_usd"] = ctx.cost_usd
        if ctx.run_id is not None:
            attributes["gatecore.run_id"] = ctx.run_id
        if ctx.client_gone:
            attributes["gatecore.client_gone"] = True
        return attributes

    async def aclose(self) -> None:
        """Export what is queued and stop the processor's thread (worker shutdown), off the loop."""
        await asyncio.to_thread(self.provider.shutdown)
