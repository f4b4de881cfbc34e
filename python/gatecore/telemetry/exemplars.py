"""Exemplars: the trace of a recent request in a histogram bucket, so a latency graph leads to a
request's trace (Grafana shows them as dots; Prometheus keeps them with `exemplar-storage`).

With tracing on, each sampled request leaves its trace and span ids on the bucket it fell in of its
duration, time-to-first-token and overhead histograms; a bucket keeps the latest. They are shown only
in the OpenMetrics exposition (telemetry/exposition.py), the format that has a place for them.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, Protocol

# OpenMetrics caps an exemplar's label set at 128 UTF-8 characters: trace_id (8 + 32) and span_id
# (7 + 16) fit.
Exemplar = tuple[str, str, float, float]  # trace id, span id, observed value, wall-clock time (s)


class SampledTrace(Protocol):
    def hex_ids(self) -> tuple[str, str]: ...


class Exemplars:
    """This worker's latest exemplar per (histogram, label text, bucket index)."""

    __slots__ = ("latest",)

    def __init__(self) -> None:
        self.latest: dict[tuple[str, str, int], Exemplar] = {}

    def add(
        self, name: str, labels: str, bounds: tuple[float, ...], value: float, ids: tuple[str, str], at: float
    ) -> None:
        """`value` was observed on histogram `name`{`labels`} (bucket bounds `bounds`) at `at` by a
        request of trace and span `ids`; it falls in the first bucket whose bound is not below it
        (+Inf past the last)."""
        self.latest[(name, labels, bisect_left(bounds, value))] = (ids[0], ids[1], value, at)

    def snapshot(self) -> list[list[Any]]:
        """Plain data for the worker's snapshot."""
        return [[name, labels, index, *exemplar] for (name, labels, index), exemplar in self.latest.items()]


def merged(snapshots: list[dict[str, Any]]) -> dict[tuple[str, str, int], Exemplar]:
    """Every worker's exemplars, the latest per bucket."""
    out: dict[tuple[str, str, int], Exemplar] = {}
    for snapshot in snapshots:
        for name, labels, index, trace_id, span_id, value, at in snapshot.get("exemplars", ()):
            key = (name, labels, index)
            kept = out.get(key)
            if kept is None or at > kept[3]:
                out[key] = (trace_id, span_id, value, at)
    return out
