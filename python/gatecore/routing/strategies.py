"""How a model picks one of its deployments: weighted random, round robin, least in-flight, lowest
latency (EWMA of time to first byte), least loaded (the engines' own queue, routing/engine_load.py) and
lowest cost (the price book's routing cost, pricing/book.py).

Each strategy chooses among the deployments it is given: the model's best-priority tier on the fast
path, or the subset still available (circuit closed, tags matching) after something failed.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gatecore.routing.deployment import Deployment

# lowest_latency: share of requests sent to a random deployment so a slow one's average can recover.
EXPLORE = 0.05


class Strategy(Protocol):
    def choose(self, deployments: Sequence[Deployment]) -> Deployment:
        """One of `deployments` (never empty)."""
        ...


class Weighted:
    """At random in proportion to the weights."""

    __slots__ = ("_cumulative", "_full", "_total")

    def __init__(self, deployments: Sequence[Deployment]):
        self._full = deployments
        self._cumulative, self._total = _cumulative(deployments)

    def choose(self, deployments: Sequence[Deployment]) -> Deployment:
        if len(deployments) == 1:
            return deployments[0]
        if deployments is self._full:
            cumulative, total = self._cumulative, self._total
        else:
            cumulative, total = _cumulative(deployments)
        point = random.random() * total
        for deployment, edge in zip(deployments, cumulative, strict=True):
            if point < edge:
                return deployment
        return deployments[-1]


def _cumulative(deployments: Sequence[Deployment]) -> tuple[list[float], float]:
    edges = list(itertools.accumulate(d.weight for d in deployments))
    return edges, edges[-1] if edges else 0.0


class RoundRobin:
    """Each deployment in turn."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = 0

    def choose(self, deployments: Sequence[Deployment]) -> Deployment:
        index = self._next
        self._next = index + 1
        return deployments[index % len(deployments)]


class LeastInflight:
    """The deployment with the fewest requests in flight from this worker (ties: round robin)."""

    __slots__ = ("_turn",)

    def __init__(self) -> None:
        self._turn = 0

    def choose(self, deployments: Sequence[Deployment]) -> Deployment:
        self._turn += 1
        count = len(deployments)
        best = deployments[self._turn % count]
        for i in range(count):
            candidate = deployments[(self._turn + i) % count]
            if candidate.inflight < best.inflight:
                best = candidate
        return best


class LowestLatency:
    """The deployment with the lowest moving average of time to first byte. One without a sample yet
    is tried first, and a small share of requests goes anywhere so a slow one can show it recovered."""

    __slots__ = ()

    def choose(self, deployments: Sequence[Deployment]) -> Deployment:
        if random.random() < EXPLORE:
            return random.choice(deployments)
        best = deployments[0]
        for candidate in deployments:
            if candidate.ttft_s is None:
                return candidate
            assert best.ttft_s is not None
            if candidate.ttft_s < best.ttft_s:
                best = candidate
        return best


class LeastLoaded:
    """Engine-aware: the replica whose engine reports the least work (waiting requests first, then
    running ones, then KV-cache use), plus what this worker has sent it since that report. Replicas
    whose load is unknown (no report yet, or a stale one) rank by in-flight requests after the known
    idle ones."""

    __slots__ = ()

    def choose(self, deployments: Sequence[Deployment]) -> Deployment:
        best = deployments[0]
        best_score = best.load_score()
        for candidate in deployments[1:]:
            score = candidate.load_score()
            if score < best_score:
                best, best_score = candidate, score
        return best


class LowestCost:
    """The cheapest deployment by `Deployment.cost` (unknown cost last), ties in config order. The
    model keeps each priority tier sorted that way, so retries move on to the next cheapest."""

    __slots__ = ("_cheapest", "_full")

    def __init__(self, deployments: Sequence[Deployment]):
        self._full = deployments
        self._cheapest = min(deployments, key=_cost_key) if deployments else None

    def choose(self, deployments: Sequence[Deployment]) -> Deployment:
        if deployments is self._full and self._cheapest is not None:
            return self._cheapest
        return min(deployments, key=_cost_key)  # min keeps the first of equals


def _cost_key(deployment: Deployment) -> tuple[int, float]:
    cost = deployment.cost
    return deployment.priority, math.inf if cost is None else cost


def build_strategy(name: str, deployments: Sequence[Deployment]) -> Strategy:
    """The strategy called `name` (validated by the config) over a model's best-priority tier."""
    if name == "round_robin":
        return RoundRobin()
    if name == "least_inflight":
        return LeastInflight()
    if name == "lowest_latency":
        return LowestLatency()
    if name == "least_loaded":
        return LeastLoaded()
    if name == "lowest_cost":
        return LowestCost(deployments)
    return Weighted(deployments)
