"""OpenTelemetry traces (`telemetry.tracing`): a server span per inference request and its children,
exported over OTLP/HTTP by this worker.

This module is imported only when tracing is enabled (worker.py), so with tracing off a
request pays one attribute test (`Chain.tracing is not None`). Each worker builds its own span
queue and exporter when its gateway is built, after granian started the worker process; the export
task runs on the worker's loop (telemetry/otlp_export.py) and shutdown flushes what is queued.

No OpenTelemetry SDK: its spans cost ~20 µs each to make and ~30 µs to encode, on the worker's GIL
(0.3-0.5 ms per traced request). Here a span is a few values until it ends, then it is encoded once,
in Rust (`_core.OtlpSpans`), straight into the next export body. What the SDK did for gatecore is
done here to the same specifications: W3C trace context (telemetry/trace_context.py), the
parent-based trace-id-ratio sampler, OTLP/HTTP protobuf with retries, the OTEL_* variables.

Sampling is parent-based by default (telemetry/sampling.py): a client's `traceparent` decides
(sampled flag), else `sample_ratio` of the trace ids (their low 64 bits, as OpenTelemetry's
TraceIdRatioBased reads them, so services sampling at the same ratio keep the same traces). An
unsampled request still has a trace context, so the upstream receives a `traceparent` with the
sampled flag off, as W3C trace context asks.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from gatecore import __version__
from gatecore._core import OtlpSpans
from gatecore.config.telemetry import TracingConfig
from gatecore.request import RequestContext
from gatecore.telemetry.otlp_export import OtlpExporter, parse_key_values, shown_url
from gatecore.telemetry.sampling import sampler_of
from gatecore.telemetry.trace_context import (
    LOW_64,
    RANDOM,
    SAMPLED,
    parse_traceparent,
    parse_tracestate,
    ratio_bound,
    traceparent_line,
)
from gatecore.telemetry.trace_spans import (
    ERROR,
    INTERNAL,
    IS_REMOTE,
    OPERATIONS,
    SERVER,
    RequestTrace,
    UnsampledTrace,
)
from gatecore.upstream.deadlines import DeadlineSweeper

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


def resource_attributes(service_name: str | None) -> dict[str, Any]:
    """The resource every span is exported under: OTEL_RESOURCE_ATTRIBUTES, then the service's
    name (the config's, else OTEL_SERVICE_NAME, else the variables', else "gatecore") and the SDK's."""
    attributes: dict[str, Any] = dict(parse_key_values(os.environ.get("OTEL_RESOURCE_ATTRIBUTES")))
    service = service_name or os.environ.get("OTEL_SERVICE_NAME") or attributes.get("service.name")
    attributes["service.name"] = service or "gatecore"
    attributes["service.version"] = __version__
    attributes["telemetry.sdk.name"] = "gatecore"
    attributes["telemetry.sdk.language"] = "python"
    attributes["telemetry.sdk.version"] = __version__
    return attributes


class Tracing:
    """A Recorder (pipeline/recording.py) that ends each request's spans; `begin` starts them."""

    __slots__ = (
        "exporter",
        "parent_based",
        "provider_kinds",
        "sample_bound",
        "spans",
        "stage_names",
        "stage_spans",
    )

    def __init__(
        self,
        config: TracingConfig,
        provider_kinds: dict[str, str],
        stage_names: tuple[str, ...],
        sweeper: DeadlineSweeper,
    ):
        self.spans = OtlpSpans(
            resource_attributes(config.service_name),
            "gatecore",
            __version__,
            config.batch_size,
            config.max_queue_size,
        )
        # Header values are never logged (the exporter logs statuses and reasons only).
        self.exporter = OtlpExporter(config, self.spans, sweeper)
        sampler = sampler_of(config, os.environ)
        self.sample_bound = ratio_bound(sampler.ratio)
        self.parent_based = sampler.parent_based
        # Configured provider name → gen_ai.provider.name.
        self.provider_kinds = {name: PROVIDER_NAMES.get(kind, kind) for name, kind in provider_kinds.items()}
        self.stage_names = stage_names  # auth, decode, then the pipeline's (RequestContext.stage_ends)
        self.stage_spans = config.stage_spans
        log.info(
            "tracing on: OTLP/HTTP to %s, sample ratio %g%s",
            shown_url(self.exporter.url),
            sampler.ratio,
            ", parent-based" if sampler.parent_based else "",
        )

    def start(self) -> None:
        """Start the export task (the worker's start, on its loop)."""
        self.exporter.start()

    def begin(self, ctx: RequestContext, path: str, headers: Any) -> None:
        """The request's trace context: the client's `traceparent` continued, else a new trace."""
        traceparent = headers.get("traceparent")
        parent = parse_traceparent(traceparent) if traceparent is not None else None
        spans = self.spans
        if parent is None:
            trace_id, parent_id, state = spans.trace_id(), 0, ""
            if (trace_id & LOW_64) >= self.sample_bound:  # the common case at low ratios: cheapest
                ctx.trace = UnsampledTrace(traceparent_line(trace_id, spans.span_id(), RANDOM, ""))
                return
            flags = RANDOM | SAMPLED
        else:
            trace_id, parent_id, flags = parent
            state = parse_tracestate(headers.get("tracestate"))
            if not self.parent_based:  # the ratio decides, on the client's trace id
                kept = (trace_id & LOW_64) < self.sample_bound
                flags = (flags | SAMPLED) if kept else (flags & ~SAMPLED)
            if not flags & SAMPLED:
                ctx.trace = UnsampledTrace(traceparent_line(trace_id, spans.span_id(), flags, state))
                return
        offset = time.time_ns() - time.perf_counter_ns()
        ctx.trace = RequestTrace(spans, path, trace_id, parent_id, flags, state, offset, self.provider_kinds)

    def record(self, ctx: RequestContext, finished_ns: int) -> None:
        """End the request's spans: the stages', the attempts' still open, the relay's, the server's."""
        trace = ctx.trace
        if not isinstance(trace, RequestTrace):  # not sampled: nothing to export
            return
        spans = self.spans
        offset = trace.offset
        names = self.stage_names
        ends = ctx.stage_ends
        trace_id, server_id, flags, state = trace.trace_id, trace.span_id, trace.span_flags, trace.trace_state
        last = ends[-1] if ends else ctx.started
        if self.stage_spans:
            spans.add_chain(trace_id, server_id, flags, names, ctx.started, ends, offset, state)
            failed = ctx.status >= 400 or ctx.status == 0
            if len(ends) < len(names) and failed:
                # The stage that refused the request (or failed on its body): it ran until the error.
                code = ctx.error_code or "internal_error"
                spans.add(
                    trace_id,
                    spans.span_id(),
                    server_id,
                    names[len(ends)],
                    INTERNAL,
                    last + offset,
                    finished_ns + offset,
                    {"error.type": code},
                    ERROR,
                    code,
                    state,
                    flags,
                )
        relayed_head = trace.end_attempts(ctx, finished_ns)
        if len(ends) == len(names):
            relay_from = relayed_head
            if not relayed_head and not trace.attempts and 0 < ctx.status < 400:  # answered in-process (echo)
                relay_from = last
            if relay_from:
                relay_id = spans.span_id()
                start, end = relay_from + offset, finished_ns + offset
                spans.add(
                    trace_id, relay_id, server_id, "relay", INTERNAL, start, end, None, 0, "", state, flags
                )
        operation = OPERATIONS.get(ctx.endpoint.name, ctx.endpoint.name)
        attributes = self._attributes(ctx, trace.path, operation, finished_ns)
        status, message = 0, ""
        if ctx.error_code is not None:
            attributes["error.type"] = ctx.error_code
        # HTTP server spans: 5xx is an error; a 4xx is the client's (error.type tells which).
        broken_stream = ctx.error_code is not None and 0 < ctx.status < 400
        if ctx.status >= 500 or ctx.status == 0 or broken_stream:
            status, message = ERROR, ctx.error_code or "internal_error"
        waiting = spans.add(
            trace_id,
            server_id,
            trace.parent_id,
            f"{operation} {ctx.client_model}" if ctx.client_model else operation,
            SERVER,
            ctx.started + offset,
            finished_ns + offset,
            attributes,
            status,
            message,
            state,
            flags | (IS_REMOTE if trace.parent_id else 0),
        )
        self.exporter.notify(waiting)

    def _attributes(self, ctx: RequestContext, path: str, operation: str, finished_ns: int) -> dict[str, Any]:
        """The server span's attributes."""
        attributes: dict[str, Any] = {
            "http.request.method": "POST",
            "url.path": path,
            "http.route": path,
            "gen_ai.operation.name": operation,
            "gatecore.request_id": ctx.request_id,
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

    async def flush(self) -> None:
        """Export every span ended so far (benches, tests)."""
        await self.exporter.flush()

    async def aclose(self) -> None:
        """Export what is queued and stop the export task (worker shutdown)."""
        await self.exporter.aclose()
