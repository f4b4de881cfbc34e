"""`x-gatecore-timing`: where one request's time went, per stage, for a client that asks for it
(`x-gatecore-debug: timing`) with a key that may see it (the master key, or a key whose metadata has
`debug: true`). The marks themselves are taken on every request (they also feed the
`gatecore_stage_duration_seconds` histogram and the trace's stage spans); requests that do not ask
pay one header lookup for the header.

The value is in Server-Timing syntax, durations in ms floored to the µs, so the stages never add up
to more than `total`: `auth;dur=0.012, decode;dur=0.020, route;dur=0.004, limits;dur=0.006,
upstream;dur=41.250, relay;dur=0.061, total;dur=41.353`. It is sent with the answer's head, so
`auth` runs from arrival, `decode` includes reading the body, `upstream` is the wait up to the answer's head
(its whole body when not streamed) and `relay` is the rest of gatecore's time until the head went out:
attempts' setup, decoding and re-encoding the answer.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gatecore.policy.key_policy import KeyPolicy

HEADER = "x-gatecore-timing"


class StageTiming:
    """Renders the stage marks every request takes (`RequestContext.stage_ends`) as the header."""

    __slots__ = ("ends", "names", "started")

    def __init__(self, names: tuple[str, ...], started: int, ends: list[int]):
        self.names = names  # the stages in order: auth, decode, then the pipeline's
        self.started = started
        self.ends = ends

    def header(self, overhead_ns: int | None) -> tuple[str, str]:
        """The header, at the moment the answer's head goes out; `overhead_ns` is gatecore's time so
        far (the rest of the time was the upstream's), None when no upstream was called (a cache hit)."""
        total = time.perf_counter_ns() - self.started
        if overhead_ns is None:
            overhead_ns = total
        parts: list[tuple[str, int]] = []
        last = self.started
        for stage, at in zip(self.names, self.ends, strict=False):
            parts.append((stage, at - last))
            last = at
        upstream = max(0, total - overhead_ns)
        staged = last - self.started
        parts.append(("upstream", upstream))
        parts.append(("relay", max(0, total - staged - upstream)))
        parts.append(("total", total))
        return HEADER, ", ".join(f"{stage};dur={d // 1000 / 1000:.3f}" for stage, d in parts)


def allowed(debug: str, key: KeyPolicy | None) -> bool:
    """The client asked for timing and its key may see it."""
    if "timing" not in (part.strip().lower() for part in debug.split(",")):
        return False
    return key is not None and (key.source == "master" or key.metadata.get("debug") is True)
