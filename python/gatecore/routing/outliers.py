"""Passive outlier ejection (`models[].routing.outliers`): a deployment that does far worse than the
rest of its pool is taken out of routing for a while, before its breaker would notice.

Every `interval_s` the detector compares the deployments of each such model over the interval just
ended: error rate (from the breaker's success and failure counters) and mean time to the answer's
head (summed by the attempt loop). A deployment with at least `min_requests` outcomes whose error
rate is at least `error_rate_margin` above the median of the others', or whose mean head time is at
least `latency_factor` times theirs (and at least `latency_min_s`), is ejected for `eject_s` times the
number of consecutive intervals it was ejected in (capped at ten), never more than `max_ejected` of
the pool at once. Per worker process, on the worker's loop; nothing is added to the request path
beyond the head-time sums.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
from typing import TYPE_CHECKING

from gatecore.config.routing import OutlierConfig

if TYPE_CHECKING:
    from gatecore.routing.deployment import Deployment
    from gatecore.routing.table import ModelRoute

log = logging.getLogger("gatecore.routing")
MAX_EJECTION_FACTOR = 10


class _Marks:
    """A deployment's counters at the start of the interval, and its ejections in a row."""

    __slots__ = ("failed", "head_count", "head_sum", "ok", "streak")

    def __init__(self, deployment: Deployment):
        self.streak = 0
        self.take(deployment)

    def take(self, deployment: Deployment) -> None:
        self.ok = deployment.breaker.ok
        self.failed = deployment.breaker.failed
        self.head_sum = deployment.head_sum
        self.head_count = deployment.head_count


class OutlierPool:
    """One model's deployments under outlier ejection."""

    def __init__(self, config: OutlierConfig, deployments: list[Deployment]):
        self.config = config
        self.deployments = deployments
        self.marks = {d: _Marks(d) for d in deployments}
        self.due = time.monotonic() + config.interval_s

    def evaluate(self, now: float) -> None:
        """Judge the interval that just ended and start the next one."""
        config = self.config
        judged: list[tuple[Deployment, float, float | None]] = []  # deployment, error rate, mean head s
        for deployment in self.deployments:
            marks = self.marks[deployment]
            ok = deployment.breaker.ok - marks.ok
            failed = deployment.breaker.failed - marks.failed
            count = deployment.head_count - marks.head_count
            mean = (deployment.head_sum - marks.head_sum) / count if count else None
            marks.take(deployment)
            if ok + failed >= config.min_requests:
                judged.append((deployment, failed / (ok + failed), mean))
        self.due = now + config.interval_s
        if len(judged) < 2:
            return
        room = max(1, int(config.max_ejected * len(self.deployments)))
        room -= sum(1 for d in self.deployments if now < d.ejected_until)
        for deployment, rate, mean in judged:
            others = [(r, m) for d, r, m in judged if d is not deployment]
            reason = _outlier(config, rate, mean, others)
            marks = self.marks[deployment]
            if reason is None:
                marks.streak = 0
                continue
            if room <= 0 or now < deployment.ejected_until:
                continue
            room -= 1
            marks.streak += 1
            seconds = config.eject_s * min(marks.streak, MAX_EJECTION_FACTOR)
            deployment.ejected_until = now + seconds
            deployment.times_ejected += 1
            deployment.hold()
            log.warning("deployment %s ejected for %.0f s: %s", deployment.id, seconds, reason)


def _outlier(
    config: OutlierConfig, rate: float, mean: float | None, others: list[tuple[float, float | None]]
) -> str | None:
    """Why a deployment is an outlier against the others of its pool, or None."""
    typical_rate = statistics.median(r for r, _ in others)
    if rate >= typical_rate + config.error_rate_margin:
        return f"error rate {rate:.0%} against {typical_rate:.0%} for the rest of the pool"
    means = [m for _, m in others if m is not None]
    if mean is not None and means and mean >= config.latency_min_s:
        typical = statistics.median(means)
        if mean >= config.latency_factor * typical:
            return f"mean time to the answer's head {mean:.3f} s against {typical:.3f} s"
    return None


class OutlierDetector:
    """Evaluates every pool when its interval ends."""

    def __init__(self, routes: list[ModelRoute]):
        self.pools = [
            OutlierPool(route.routing.outliers, route.deployments)
            for route in routes
            if route.routing.outliers is not None and len(route.deployments) > 1
        ]
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.pools and self._task is None:
            now = time.monotonic()
            for pool in self.pools:
                pool.due = now + pool.config.interval_s
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, min(p.due for p in self.pools) - time.monotonic()))
            now = time.monotonic()
            for pool in self.pools:
                if now >= pool.due:
                    pool.evaluate(now)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
