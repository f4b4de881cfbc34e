"""Which new traces are kept: the sampler's ratio and whether a client's sampled flag decides, from
`telemetry.tracing` or, where it leaves them unset, OpenTelemetry's OTEL_TRACES_SAMPLER and
OTEL_TRACES_SAMPLER_ARG (the variables an operator already sets for every other service)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import NamedTuple

from gatecore.config.telemetry import TracingConfig

log = logging.getLogger("gatecore.telemetry")

# OTEL_TRACES_SAMPLER's values gatecore implements → (ratio, or None for OTEL_TRACES_SAMPLER_ARG's;
# parent-based). The remote samplers (jaeger_remote, xray) need a sampling service: not supported.
SAMPLERS: dict[str, tuple[float | None, bool]] = {
    "always_on": (1.0, False),
    "always_off": (0.0, False),
    "traceidratio": (None, False),
    "parentbased_always_on": (1.0, True),
    "parentbased_always_off": (0.0, True),
    "parentbased_traceidratio": (None, True),
}


class Sampler(NamedTuple):
    """`ratio` of new trace ids kept; with `parent_based`, a client's sampled flag decides instead."""

    ratio: float
    parent_based: bool


def sampler_of(config: TracingConfig, env: Mapping[str, str]) -> Sampler:
    """The config's settings, each one unset taken from the variables, else OpenTelemetry's default
    (parentbased_always_on). Values the variables' specification does not allow are logged and
    ignored, as it asks."""
    ratio, parent_based = 1.0, True
    name = env.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if name:
        known = SAMPLERS.get(name)
        if known is None:
            log.warning("OTEL_TRACES_SAMPLER=%r is not supported: using parentbased_always_on", name[:64])
        else:
            fixed, parent_based = known
            ratio = _ratio_argument(env.get("OTEL_TRACES_SAMPLER_ARG")) if fixed is None else fixed
    return Sampler(
        ratio if config.sample_ratio is None else config.sample_ratio,
        parent_based if config.parent_based is None else config.parent_based,
    )


def _ratio_argument(text: str | None) -> float:
    if text is None or not text.strip():
        return 1.0
    try:
        ratio = float(text)
    except ValueError:
        ratio = math.nan
    if not 0.0 <= ratio <= 1.0:  # NaN fails it too
        log.warning("OTEL_TRACES_SAMPLER_ARG=%r is not a ratio between 0 and 1: using 1.0", text[:64])
        return 1.0
    return ratio
