"""Prometheus text exposition (format 0.0.4), or OpenMetrics 1.0 with exemplars, of workers'
snapshots added together."""

from __future__ import annotations

import platform
from typing import Any

from gatecore import __version__
from gatecore.telemetry.deployment_state import NAME as DEPLOYMENT_STATE
from gatecore.telemetry.deployment_state import render_states
from gatecore.telemetry.exemplars import Exemplar, merged
from gatecore.telemetry.metrics import FAMILIES
from gatecore.telemetry.process_stats import BUILD_INFO, SNAPSHOT_KEYS
from gatecore.telemetry.process_stats import FAMILIES as PROCESS_FAMILIES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
IN_FLIGHT = "gatecore_requests_in_flight"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def render(snapshots: list[dict[str, Any]], openmetrics: bool = False) -> bytes:
    """Sum the snapshots' series (counters, histogram buckets, the in-flight gauge, workers per
    breaker state) and render them, each family with its HELP and TYPE lines, series in a stable
    order. OpenMetrics names a counter's family without `_total`, carries the histogram buckets'
    exemplars and ends with `# EOF`."""
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
    exemplars = merged(snapshots) if openmetrics else {}
    lines: list[str] = []
    for name, (kind, help_text, bounds) in FAMILIES.items():
        _family(lines, name, kind, help_text, openmetrics)
        if name == DEPLOYMENT_STATE:
            render_states(snapshots, lines)
        elif name == IN_FLIGHT:
            lines.append(f"{name} {in_flight}")
        elif kind in ("counter", "gauge"):  # other gauges are summed over the workers like counters
            for (series, labels), value in sorted(counters.items()):
                if series == name:
                    lines.append(f"{name}{{{labels}}} {_number(value)}")
        else:
            for (series, labels), buckets in sorted(histograms.items()):
                if series == name:
                    lines.extend(_histogram(name, labels, bounds, buckets, exemplars))
    _render_processes(snapshots, lines, openmetrics)
    if openmetrics:
        lines.append("# EOF")
    lines.append("")
    return "\n".join(lines).encode()


def _family(lines: list[str], name: str, kind: str, help_text: str, openmetrics: bool) -> None:
    if openmetrics and kind == "counter":
        name = name.removesuffix("_total")  # the family; its sample keeps the suffix
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


def _histogram(
    name: str,
    labels: str,
    bounds: tuple[float, ...],
    buckets: list[float],
    exemplars: dict[tuple[str, str, int], Exemplar],
) -> list[str]:
    sep = "," if labels else ""
    lines: list[str] = []
    cumulative = 0.0
    for index, (bound, count) in enumerate(zip((*bounds, "+Inf"), buckets[:-1], strict=True)):
        cumulative += count
        line = f'{name}_bucket{{{labels}{sep}le="{bound}"}} {_number(cumulative)}'
        exemplar = exemplars.get((name, labels, index)) if exemplars else None
        if exemplar is not None:
            trace_id, span_id, value, at = exemplar
            line += f' # {{trace_id="{trace_id}",span_id="{span_id}"}} {value!r} {at:.3f}'
        lines.append(line)
    lines.append(f"{name}_sum{{{labels}}} {_number(buckets[-1])}")
    lines.append(f"{name}_count{{{labels}}} {_number(cumulative)}")
    return lines


def _render_processes(snapshots: list[dict[str, Any]], lines: list[str], openmetrics: bool) -> None:
    """The build info, then each live worker's `process_*` series, labelled by its pid (the
    snapshots of exited workers carry no `process`)."""
    _family(
        lines, BUILD_INFO, "gauge", "gatecore's version and the Python that runs it; always 1.", openmetrics
    )
    python = platform.python_version()
    lines.append(f'{BUILD_INFO}{{version="{__version__}",python_version="{python}"}} 1')
    workers = sorted(
        (p for s in snapshots if isinstance(p := s.get("process"), dict) and isinstance(p.get("pid"), int)),
        key=lambda p: p["pid"],
    )
    for name, (kind, help_text) in PROCESS_FAMILIES.items():
        _family(lines, name, kind, help_text, openmetrics)
        key = SNAPSHOT_KEYS[name]
        for figures in workers:
            value = figures.get(key)
            if isinstance(value, int | float):
                lines.append(f'{name}{{pid="{figures["pid"]}"}} {_number(value)}')


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
