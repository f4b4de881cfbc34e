"""The `telemetry` section: Prometheus metrics and the per-request timing header."""

from __future__ import annotations

import msgspec


class TelemetryConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # `GET /metrics` in Prometheus text; off drops the route and the per-request aggregation.
    metrics: bool = True
    # Put /metrics behind the master key (DESIGN.md §3); default open for Prometheus scraping.
    metrics_auth: bool = False
    # How often, at most, a worker writes its figures for the other workers' scrapes (seconds).
    metrics_flush_s: float = 0.5
