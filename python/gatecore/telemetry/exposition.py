"""Prometheus text exposition (format 0.0.4) of workers' snapshots added together."""

from __future__ import annotations

from typing import Any

from gatecore.telemetry.deployment_state import NAME as DEPLOYMENT_STATE
from gatecore.telemetry.deployment_state import render_states
from gatecore.telemetry.metrics import FAMILIES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render(snapshots: list[dict[str, Any]]) -> bytes:
    """Sum the snapshots' series (counters, histogram buckets, the in-flight gauge, workers per
    breaker state) and render them, each family with its HELP and TYPE lines, series in a stable
    order."""
    counters: dict[tuple[str, str], float] = {}
    histograms: dict[tuple[str, str], list[float]] = {}
    in_flight = 0
    for snapshot in snapshots:
        for name, labels, value in snapshot.get("counters", ()):
            counters[(name, labels)] = counters.get((name, labels), 0.0) + value
        for name, labels, buckets in snapshot.get("histograms", ()):
            total = histograms.get((name, labels))
            if total is None:
                histograms[(name, labels)] = list(buckets)
            elif len(total) == len(buckets):
                for i, count in enumerate(buckets):
                    total[i] += count
        in_flight += int(snapshot.get("in_flight", 0))
    lines: list[str] = []
    for name, (kind, help_text, bounds) in FAMILIES.items():
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        if name == DEPLOYMENT_STATE:
            render_states(snapshots, lines)
        elif kind == "gauge":
            lines.append(f"{name} {in_flight}")
        elif kind == "counter":
            for (series, labels), value in sorted(counters.items()):
                if series == name:
                    lines.append(f"{name}{{{labels}}} {_number(value)}")
        else:
            for (series, labels), buckets in sorted(histograms.items()):
                if series == name:
                    lines.extend(_histogram(name, labels, bounds, buckets))
    lines.append("")
    return "\n".join(lines).encode()


def _histogram(name: str, labels: str, bounds: tuple[float, ...], buckets: list[float]) -> list[str]:
    sep = "," if labels else ""
    lines: list[str] = []
    cumulative = 0.0
    for bound, count in zip((*bounds, "+Inf"), buckets[:-1], strict=True):
        cumulative += count
        lines.append(f'{name}_bucket{{{labels}{sep}le="{bound}"}} {_number(cumulative)}')
    lines.append(f"{name}_sum{{{labels}}} {_number(buckets[-1])}")
    lines.append(f"{name}_count{{{labels}}} {_number(cumulative)}")
    return lines


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
