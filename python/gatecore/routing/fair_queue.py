"""Weighted fair queuing across tenants on token cost: start-time fair queuing (Goyal et al., SFQ).

Each request gets a start tag S = max(V, F_tenant) and a finish tag F = S + cost / weight, where V is
the start tag of the last request sent on and F_tenant the finish tag of the tenant's previous
request. Waiting requests go on in order of finish tag, so each tenant's share of the pool's token
throughput follows its requests' weights whatever their number: a tenant sending 64 requests at once
gets its turn after each of a quiet tenant's, not 64 turns ahead. Requests that go through without
waiting are tagged too (a tenant that filled the pool first has spent its share).

Starvation-free: V only grows, and a waiting request's finish tag is fixed when it arrives, so every
later arrival sorts after it once V has passed its start. Memory is bounded: `max_queued` waiting
requests, and a tenant's tag is forgotten once V has passed it (it would restart at V anyway).
"""

from __future__ import annotations

import heapq
from typing import Generic, TypeVar

T = TypeVar("T")
# Tenants' finish tags kept before the ones V has passed are dropped.
_PRUNE_AT = 4096


class Waiter(Generic[T]):
    """One waiting request: its tenant and class, its finish tag and what it carries (`item`)."""

    __slots__ = ("finish", "item", "klass", "left", "start", "tenant")

    def __init__(self, tenant: str, klass: str, start: float, finish: float, item: T):
        self.tenant = tenant
        self.klass = klass
        self.start = start
        self.finish = finish
        self.item = item
        self.left = False  # taken out (sent on, timed out, or its client went away)


class FairQueue(Generic[T]):
    """The waiting requests of one pool, in finish-tag order, and the tenants' tags."""

    __slots__ = ("_heap", "_last", "_seq", "counts", "max_queued", "virtual", "waiting")

    def __init__(self, max_queued: int):
        self.max_queued = max_queued
        self.virtual = 0.0  # V: the start tag of the last request sent on
        self._last: dict[str, float] = {}  # tenant → finish tag of its latest request
        self._heap: list[tuple[float, int, Waiter[T]]] = []
        self._seq = 0  # ties go in arrival order
        self.waiting = 0  # requests in the heap that have not left
        self.counts: dict[tuple[str, str], int] = {}  # (tenant, class) → waiting requests

    def tag(self, tenant: str, weight: float, cost: float) -> tuple[float, float]:
        """The start and finish tags of a tenant's next request of `cost` tokens at `weight`."""
        start = max(self.virtual, self._last.get(tenant, 0.0))
        finish = start + max(cost, 1.0) / weight
        last = self._last
        if len(last) >= _PRUNE_AT and tenant not in last:
            self._prune()
        last[tenant] = finish
        return start, finish

    def pass_through(self, tenant: str, weight: float, cost: float) -> None:
        """A request sent on at once (nothing waiting, room in the pool): tagged, and V moves to its
        start."""
        start, _ = self.tag(tenant, weight, cost)
        self.virtual = max(self.virtual, start)

    def push(self, tenant: str, klass: str, weight: float, cost: float, item: T) -> Waiter[T]:
        """Queue a request; the caller checked `full` first."""
        start, finish = self.tag(tenant, weight, cost)
        waiter = Waiter(tenant, klass, start, finish, item)
        self._seq += 1
        heapq.heappush(self._heap, (finish, self._seq, waiter))
        self.waiting += 1
        key = (tenant, klass)
        self.counts[key] = self.counts.get(key, 0) + 1
        return waiter

    @property
    def full(self) -> bool:
        return self.waiting >= self.max_queued

    def peek(self) -> Waiter[T] | None:
        """The waiting request with the smallest finish tag (left ones dropped on the way)."""
        heap = self._heap
        while heap and heap[0][2].left:
            heapq.heappop(heap)
        return heap[0][2] if heap else None

    def pop(self) -> Waiter[T]:
        """Send on the request `peek` returned: V moves to its start."""
        _, _, waiter = heapq.heappop(self._heap)
        self.leave(waiter)
        self.virtual = max(self.virtual, waiter.start)
        return waiter

    def leave(self, waiter: Waiter[T]) -> None:
        """Take a request out (sent on, timed out, client gone); lazily removed from the heap."""
        if waiter.left:
            return
        waiter.left = True
        self.waiting -= 1
        key = (waiter.tenant, waiter.klass)
        left = self.counts.get(key, 1) - 1
        if left:
            self.counts[key] = left
        else:
            self.counts.pop(key, None)
        if len(self._heap) > 2 * self.waiting + 64:
            # Many left while deep in the heap (timeouts, disconnects): rebuild it so it stays bounded.
            self._heap = [entry for entry in self._heap if not entry[2].left]
            heapq.heapify(self._heap)

    def _prune(self) -> None:
        virtual = self.virtual
        kept = {t: f for t, f in self._last.items() if f > virtual}
        # Many new tenants at once do not move V: past four times the mark, every tag restarts at V
        # (a moment's unfairness, never unbounded memory).
        self._last = kept if len(kept) < 4 * _PRUNE_AT else {}
