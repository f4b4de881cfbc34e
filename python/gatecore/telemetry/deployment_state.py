"""`gatecore_deployment_state{model,deployment,state}`: each deployment's circuit breaker as a state set.

Breakers are per worker process (routing/breaker.py), so the gauge counts workers: the value of a
(model, deployment, state) series is how many live workers see that deployment in that state, and a
deployment's four series add up to the number of live workers (1 for one worker). With two workers,
`state="open"} 1` and `state="closed"} 1` means one worker has opened its breaker and the other has not
(seen enough failures yet).

The state is read when scraped, not when the snapshot was written: a snapshot carries each breaker's
stored state and the CLOCK_MONOTONIC time its cooldown or hold ends (`time.monotonic()` is the same
clock in every process of the machine), so a cooldown that ran out since shows as `half_open` in every
worker's figures, not only the scraped one's.

- `closed`: requests flow.
- `open`: skipped until its cooldown ends.
- `half_open`: the cooldown ended; the next request is a probe (or one is in flight).
- `held`: closed, but skipped until an upstream's Retry-After has passed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

from gatecore.telemetry.labels import label_text

NAME = "gatecore_deployment_state"
STATES = ("closed", "open", "half_open", "held")
# The stored states of routing/breaker.py, as its snapshots carry them.
_CLOSED, _OPEN = "closed", "open"


class BreakerView(Protocol):
    """What the gauge reads of a deployment's breaker (routing/breaker.py)."""

    @property
    def state(self) -> str: ...

    @property
    def reopen_at(self) -> float: ...


def effective_state(stored: str, reopen_at: float, now: float) -> str:
    """The breaker's state as a request arriving at `now` would find it."""
    if stored == _OPEN:
        return "open" if now < reopen_at else "half_open"
    if stored == _CLOSED:
        return "held" if now < reopen_at else "closed"
    return "half_open"


class DeploymentStates:
    """This worker's breakers, with their series' label texts built once."""

    __slots__ = ("rows",)

    def __init__(self, breakers: Iterable[tuple[str, str, BreakerView]]):
        """`breakers`: (model, deployment id, breaker) of every deployment of every model route
        (one provider/model pair in two models has two breakers)."""
        self.rows: list[tuple[str, BreakerView]] = [
            (label_text(model=model, deployment=deployment), breaker)
            for model, deployment, breaker in breakers
        ]

    def snapshot(self) -> list[list[Any]]:
        """Plain data for the worker's snapshot: [labels, stored state, reopen_at] per deployment."""
        return [[labels, breaker.state, breaker.reopen_at] for labels, breaker in self.rows]


def render_states(snapshots: list[dict[str, Any]], lines: list[str]) -> None:
    """Append the series: per deployment and state, the number of live workers in that state."""
    now = time.monotonic()
    counts: dict[str, dict[str, int]] = {}
    for snapshot in snapshots:
        for labels, stored, reopen_at in snapshot.get("deployments", ()):
            per_state = counts.setdefault(labels, dict.fromkeys(STATES, 0))
            per_state[effective_state(stored, reopen_at, now)] += 1
    for labels in sorted(counts):
        for state, workers in counts[labels].items():
            lines.append(f'{NAME}{{{labels},state="{state}"}} {workers}')
