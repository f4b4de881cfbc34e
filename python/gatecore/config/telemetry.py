"""The `telemetry` section: Prometheus metrics, the per-request timing header and OpenTelemetry traces."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

import msgspec


class TracingConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`telemetry.tracing`: OpenTelemetry traces exported over OTLP/HTTP (protobuf)."""

    # Off: the tracer is not even imported, and a request pays one attribute test.
    enabled: bool = False
    # The collector's traces URL. Unset: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else
    # OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, else http://127.0.0.1:4318/v1/traces.
    endpoint: str | None = None
    # Share of new traces kept (by trace id, as OpenTelemetry's TraceIdRatioBased). Unset:
    # OTEL_TRACES_SAMPLER(_ARG), else 1.0.
    sample_ratio: float | None = None
    # A client's `traceparent` sampled flag decides for its trace (OpenTelemetry's ParentBased); false:
    # the ratio decides for every trace. Unset: OTEL_TRACES_SAMPLER's parentbased_* or not, else true.
    parent_based: bool | None = None
    service_name: str | None = None  # unset: OTEL_SERVICE_NAME, else "gatecore"
    # Sent with every export (a collector's API key, `${ENV}` interpolated); merged over
    # OTEL_EXPORTER_OTLP_TRACES_HEADERS, else OTEL_EXPORTER_OTLP_HEADERS. Never logged.
    headers: dict[str, str] = {}
    # A span per pipeline stage (auth, decode, route, limits, …) under the request's span; false keeps
    # the request's, its upstream attempts' and the relay's, about half the spans to make and export.
    stage_spans: bool = True
    timeout_s: float = 10.0  # per exported batch, retries included
    # PEM file of the CAs that verify an https collector (a private CA). Unset:
    # OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE, else OTEL_EXPORTER_OTLP_CERTIFICATE, else the system's.
    certificate: str | None = None
    # gzip-compress export bodies. Unset: OTEL_EXPORTER_OTLP_TRACES_COMPRESSION, else
    # OTEL_EXPORTER_OTLP_COMPRESSION, else none.
    compression: Literal["gzip", "none"] | None = None
    # The batch span processor: spans wait in a bounded queue (dropped when it is full) and go out
    # every `schedule_delay_s`, or as soon as `batch_size` are waiting.
    max_queue_size: int = 8192
    batch_size: int = 512
    schedule_delay_s: float = 1.0


class TelemetryConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # `GET /metrics` in Prometheus text; off drops the route and the per-request aggregation.
    metrics: bool = True
    # Put /metrics behind the master key (DESIGN.md §3); default open for Prometheus scraping.
    metrics_auth: bool = False
    # How often, at most, a worker writes its figures for the other workers' scrapes (seconds).
    metrics_flush_s: float = 0.5
    tracing: TracingConfig = TracingConfig()


def validate_tracing(tracing: TracingConfig) -> list[str]:
    """Every error of `telemetry.tracing` as `path: reason`."""
    path = "telemetry.tracing"
    errors: list[str] = []
    if tracing.endpoint is not None:
        parts = urlsplit(tracing.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            errors.append(f"{path}.endpoint: '{tracing.endpoint}' is not an http(s) URL")
    if tracing.certificate is not None and not os.path.isfile(tracing.certificate):
        errors.append(f"{path}.certificate: '{tracing.certificate}' is not a file")
    if tracing.sample_ratio is not None and not 0.0 <= tracing.sample_ratio <= 1.0:
        errors.append(f"{path}.sample_ratio: must be between 0 and 1")
    if tracing.service_name is not None and not tracing.service_name.strip():
        errors.append(f"{path}.service_name: must not be empty")
    errors.extend(
        f"{path}.headers: '{name}' is not a header name"
        for name in tracing.headers
        if not name or any(c in name for c in " :\r\n")
    )
    if not tracing.timeout_s > 0:
        errors.append(f"{path}.timeout_s: must be greater than 0")
    if tracing.max_queue_size < 1 or tracing.batch_size < 1:
        errors.append(f"{path}: max_queue_size and batch_size must be at least 1")
    elif tracing.batch_size > tracing.max_queue_size:
        errors.append(f"{path}.batch_size: must not exceed max_queue_size")
    if not tracing.schedule_delay_s > 0:
        errors.append(f"{path}.schedule_delay_s: must be greater than 0")
    return errors


def tracing_enabled(tracing: TracingConfig, env: Mapping[str, str]) -> bool:
    """Whether this worker traces: `enabled`, unless OTEL_SDK_DISABLED=true (the OpenTelemetry
    switch that turns a service's telemetry off without editing its config)."""
    return tracing.enabled and env.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"
