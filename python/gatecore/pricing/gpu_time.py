"""GPU-time pricing: each request pays its share of a local deployment's GPU pool while in flight.

A pool of `gpus` GPUs costs `gpus * gpu_hour_usd` per hour whether it serves one request or fifty; at
any instant that cost is split evenly among the requests in flight on the deployment. A request's share
is ∫ dt / n(t) over its lifetime (n: requests in flight), so two requests that run side by side for
the same time each pay half of that time, and the shares of all requests add up to the time the pool
was busy.

The meter keeps that integral as one running sum (the "GPU clock", advanced by dt / n at every start
and end), so a start or an end is O(1): a request reads the clock when it starts and when it ends.

Approximation: each worker process counts only its own requests in flight. With W workers sharing a
deployment, concurrent requests in other workers are not seen, so a request is charged as if its
worker were alone on the pool (up to W times the true share; exact with one worker, or when a deployment's
traffic stays on one worker).
"""

from __future__ import annotations

import time

from gatecore.request import RequestContext

# A request's estimated GPU cost before it runs: the moving average of recent requests' real charges.
_AVERAGE_WEIGHT = 0.1


class GpuMeter:
    """The GPU clock of one deployment in one worker."""

    __slots__ = ("_clock", "_last_ns", "average_usd", "in_flight", "usd_per_second")

    def __init__(self, gpu_hour_usd: float, gpus: int):
        self.usd_per_second = gpu_hour_usd * gpus / 3600.0
        self.in_flight = 0
        self._clock = 0.0  # seconds of "1/n" time since start: ∫ dt / n(t)
        self._last_ns = 0
        self.average_usd = 0.0

    def _advance(self, now_ns: int) -> None:
        if self.in_flight > 0 and now_ns > self._last_ns:
            self._clock += (now_ns - self._last_ns) / 1e9 / self.in_flight
        self._last_ns = max(now_ns, self._last_ns)

    def begin(self, now_ns: int) -> float:
        """A request starts: returns the clock reading to pass to `end`."""
        self._advance(now_ns)
        self.in_flight += 1
        return self._clock

    def end(self, mark: float, now_ns: int) -> float:
        """The request that started at `mark` ends: returns its share of the pool in GPU-pool seconds."""
        self._advance(now_ns)
        self.in_flight = max(0, self.in_flight - 1)
        seconds = self._clock - mark
        self.average_usd += _AVERAGE_WEIGHT * (seconds * self.usd_per_second - self.average_usd)
        return seconds


class GpuClockStage:
    """Starts the GPU clock of requests routed to a GPU-priced deployment (after the route stage).

    The matching end is `PriceBook.cost_usd`, called once per finished request by the ledger.
    """

    __slots__ = ("meters",)

    def __init__(self, meters: dict[object, GpuMeter]):
        self.meters = meters

    async def __call__(self, ctx: RequestContext) -> None:
        meter = self.meters.get(ctx.deployment)
        if meter is not None:
            ctx.gpu_mark = (meter, meter.begin(time.perf_counter_ns()))
