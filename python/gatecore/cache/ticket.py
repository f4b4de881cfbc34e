"""A request's cache decision, on the context (`ctx.cache`): its `x-gatecore-cache` state, and on a
miss that may be stored, the answer's writes as they go to the client."""

from __future__ import annotations

import time
from itertools import pairwise
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gatecore.cache.semantic import Probe


class Ticket:
    """What the cache stage decided; the writer (cache/writer.py) stores the answer after the request."""

    __slots__ = ("key", "limit", "namespace", "parts", "probe", "size", "state", "store", "times", "ttl_s")

    def __init__(
        self,
        state: str,
        key: bytes = b"",
        namespace: str = "",
        ttl_s: float = 0.0,
        limit: int = 0,
        paced: bool = False,
    ):
        self.state = state  # hit | miss | bypass
        self.key = key
        self.namespace = namespace
        self.ttl_s = ttl_s
        self.limit = limit  # the most bytes an entry may hold
        self.store = limit > 0  # becomes False once the answer outgrew the limit
        self.parts: list[bytes] = []
        # When each write went out (ns), for a paced replay's gaps: kept only with `cache.replay_pacing`.
        self.times: list[int] | None = [] if paced else None
        self.size = 0
        self.probe: Probe | None = None  # a semantic miss's vector and filters, to store the answer under

    def add(self, data: bytes) -> None:
        """One write of the answer (relay/): kept while the answer fits an entry."""
        if not self.store:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.store = False
            self.parts = []
            return
        self.parts.append(data)
        times = self.times
        if times is not None:
            times.append(time.perf_counter_ns())

    def gaps_ms(self) -> list[int]:
        """The milliseconds between consecutive writes (a stream's pacing; empty when not kept)."""
        times = self.times
        return [(b - a) // 1_000_000 for a, b in pairwise(times)] if times is not None else []
