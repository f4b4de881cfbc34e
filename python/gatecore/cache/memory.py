"""The in-process backend: an LRU over the entries' bytes with a TTL per entry, per worker (purges
reach the other workers through the server's purge log: cache/purges.py)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from gatecore.cache.entry import CachedAnswer
from gatecore.cache.purges import SharedPurges

_clock = time.monotonic


class MemoryBackend:
    """Entries by key, least recently used first; bounded by `max_bytes` over every entry."""

    name = "memory"
    __slots__ = ("_entries", "evictions", "held_bytes", "max_bytes", "purges")

    def __init__(self, max_bytes: int, purges: SharedPurges | None = None):
        self.max_bytes = max_bytes
        self.purges = purges  # the other workers' purges, applied before each lookup
        # key → (monotonic expiry, size, entry)
        self._entries: OrderedDict[bytes, tuple[float, int, CachedAnswer]] = OrderedDict()
        self.held_bytes = 0
        self.evictions = 0

    async def get(self, key: bytes, namespace: str) -> CachedAnswer | None:
        """The live entry under `key` in `namespace`, else None (an expired one is dropped)."""
        return self.find(key, namespace)

    def find(self, key: bytes, namespace: str) -> CachedAnswer | None:
        """`get`, at once (the stage calls it without making a coroutine)."""
        purges = self.purges
        if purges is not None:
            for rule in purges.pending():
                self.drop(rule.matches, rule.namespace)
        item = self._entries.get(key)
        if item is None:
            return None
        expires, size, entry = item
        if expires <= _clock():
            del self._entries[key]
            self.held_bytes -= size
            return None
        if entry.namespace != namespace:  # the key already says so; a second, independent check
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: bytes, entry: CachedAnswer, ttl_s: float) -> None:
        """Store `entry` for `ttl_s` seconds, evicting the least recently used beyond the bound."""
        size = entry.size
        if size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.held_bytes -= old[1]
        self._entries[key] = (_clock() + ttl_s, size, entry)
        self.held_bytes += size
        while self.held_bytes > self.max_bytes:
            _, (_, dropped, _) = self._entries.popitem(last=False)
            self.held_bytes -= dropped
            self.evictions += 1

    async def purge(self, matches: Callable[[CachedAnswer], bool], namespace: str | None = None) -> int:
        """Drop every entry `matches` accepts (of `namespace` only, when given); how many were dropped."""
        return self.drop(matches, namespace)

    def drop(self, matches: Callable[[CachedAnswer], bool], namespace: str | None = None) -> int:
        """`purge`, at once."""
        doomed = [
            key
            for key, (_, _, entry) in self._entries.items()
            if (namespace is None or entry.namespace == namespace) and matches(entry)
        ]
        for key in doomed:
            self.held_bytes -= self._entries.pop(key)[1]
        return len(doomed)

    def entries(self) -> int:
        return len(self._entries)

    async def aclose(self) -> None:
        if self.purges is not None:
            self.purges.close()
