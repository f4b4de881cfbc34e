"""Prometheus text exposition (format 0.0.4) of workers' snapshots added together."""

from __future__ import annotations

import platform
from typing import Any

from gatecore import __version__
from gatecore.telemetry.deployment_state import NAME as DEPLOYMENT_STATE
from gatecore.telemetry.deployment_state import render_states
from gatecore.telemetry.metrics import FAMILIES
from gatecore.telemetry.process_stats import BUILD_INFO, SNAPSHOT_KEYS
from gatecore.telemetry.process_stats import FAMILIES as PROCESS_FAMILIES

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
    _render_processes(snapshots, lines)
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


def _render_processes(snapshots: list[dict[str, Any]], lines: list[str]) -> None:
    """The build info, then each live worker's `process_*` series, labelled by its pid (the
    snapshots of exited workers carry no `process`)."""
    lines.append(f"# HELP {BUILD_INFO} gatecore's version and the Python that runs it; always 1.")
    lines.append(f"# TYPE {BUILD_INFO} gauge")
    python = platform.python_version()
    lines.append(f'{BUILD_INFO}{{version="{__version__}",python_version="{python}"}} 1')
    workers = sorted(
        (p for s in snapshots if isinstance(p := s.get("process"), dict) and isinstance(p.get("pid"), int)),
        key=lambda p: int(p["pid"]),
    )
    for name, (kind, help_text) in PROCESS_FAMILIES.items():
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        key = SNAPSHOT_KEYS[name]
        for figures in workers:
            value = figures.get(key)
            if isinstance(value, int | float):
                lines.append(f'{name}{{pid="{figures["pid"]}"}} {_number(value)}')


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
