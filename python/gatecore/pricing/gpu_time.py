"""GPU-time pricing: each request pays its share of a local deployment's GPU pool while in flight.

A pool of `gpus` GPUs costs `gpus * gpu_hour_usd` per hour whether it serves one request or fifty; at
any instant that cost is split evenly among the requests in flight on the deployment. A request's share
is ∫ dt / n(t) over its lifetime (n: requests in flight), so two requests that run side by side for
the same time each pay half of that time, and the shares of all requests add up to the time the pool
was busy.

The meter keeps that integral as one running sum (the "GPU clock", advanced by dt / n at every start
and end), so a start or an end is O(1): a request reads the clock when it starts and when it ends. The
clock lives in the server's shared counter table (`_core.CounterTable.share_begin/share_end`), so n
counts the requests of every worker process: with `--workers N` the shares of all requests still add
up to the time the pool was busy.
"""

from __future__ import annotations

import time

from gatecore._core import CounterTable
from gatecore.request import RequestContext

# A request's estimated GPU cost before it runs: the moving average of recent requests' real charges.
_AVERAGE_WEIGHT = 0.1


class GpuMeter:
    """The GPU clock of one deployment, shared by the server's workers through `table`."""

    __slots__ = ("_slots", "_table", "average_usd", "usd_per_second")

    def __init__(self, table: CounterTable, pool: str, gpu_hour_usd: float, gpus: int):
        self.usd_per_second = gpu_hour_usd * gpus / 3600.0
        self._table = table
        cells = [table.slot(f"gpu:{pool}:{part}") for part in ("lock", "in_flight", "last", "clock")]
        self._slots = (cells[0], cells[1], cells[2], cells[3])
        self.average_usd = 0.0  # this worker's moving average of recent charges (an estimate)

    @property
    def in_flight(self) -> int:
        """Requests in flight on the pool now, in every worker."""
        return self._table.share_in_flight(self._slots)

    def begin(self, now_ns: int) -> int:
        """A request starts: returns the clock reading to pass to `end`."""
        return self._table.share_begin(self._slots, now_ns)

    def end(self, mark: int, now_ns: int) -> float:
        """The request that started at `mark` ends: returns its share of the pool in GPU-pool seconds."""
        seconds = self._table.share_end(self._slots, mark, now_ns) / 1e9
        self.average_usd += _AVERAGE_WEIGHT * (seconds * self.usd_per_second - self.average_usd)
        return seconds


class GpuClockStage:
    """Starts the GPU clock of requests routed to a GPU-priced deployment (after the route stage).

    The matching end is `PriceBook.cost_usd`, called once per finished request by the ledger.
    """

    __slots__ = ("meters",)

    def __init__(self, meters: dict[object, GpuMeter]):
        self.meters = meters

    def __call__(self, ctx: RequestContext) -> None:
        meter = self.meters.get(ctx.deployment)
        if meter is not None:
            ctx.gpu_mark = (meter, meter.begin(time.perf_counter_ns()))
