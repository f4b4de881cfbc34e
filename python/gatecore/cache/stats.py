"""The cache's counters for `/metrics`: hits, misses, bypasses, stores, lookup latency (per worker)."""

from __future__ import annotations

# Upper bounds (seconds) of the lookup-latency histogram's buckets: the family's own.
from gatecore.telemetry.metrics import CACHE_LOOKUP_BOUNDS as LOOKUP_BUCKETS


class CacheStats:
    """Plain integers, read at scrape time."""

    __slots__ = (
        "bypasses",
        "errors",
        "hits",
        "lookup_buckets",
        "lookup_count",
        "lookup_sum_ns",
        "misses",
        "saved_usd",
        "semantic_hits",
        "stores",
    )

    def __init__(self) -> None:
        self.hits = 0
        self.semantic_hits = 0  # of the hits, those found by meaning
        self.misses = 0
        self.bypasses = 0
        self.stores = 0
        self.errors = 0  # lookups or stores the backend failed (served uncached)
        self.saved_usd = 0.0
        self.lookup_buckets = [0] * (len(LOOKUP_BUCKETS) + 1)  # the last: +Inf
        self.lookup_count = 0
        self.lookup_sum_ns = 0

    def lookup(self, ns: int) -> None:
        """One lookup that took `ns` nanoseconds."""
        self.lookup_count += 1
        self.lookup_sum_ns += ns
        seconds = ns / 1e9
        for i, bound in enumerate(LOOKUP_BUCKETS):
            if seconds <= bound:
                self.lookup_buckets[i] += 1
                return
        self.lookup_buckets[-1] += 1
