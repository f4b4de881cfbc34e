"""What a cache backend offers the stage, the writer and the admin API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gatecore.cache.entry import CachedAnswer


class Backend(Protocol):
    """An answer store keyed by the 16-byte exact key (cache/memory.py, cache/redis_backend.py)."""

    @property
    def name(self) -> str: ...

    @property
    def held_bytes(self) -> int:
        """Bytes held (this worker's, for the in-process backend)."""
        ...

    @property
    def evictions(self) -> int: ...

    async def get(self, key: bytes, namespace: str) -> CachedAnswer | None:
        """The live entry under `key` whose namespace is `namespace`, else None; never raises for
        the backend's own failure (the request goes on uncached)."""
        ...

    def put(self, key: bytes, entry: CachedAnswer, ttl_s: float) -> None:
        """Store `entry` for `ttl_s` seconds (may complete later; never raises)."""
        ...

    async def purge(self, matches: Callable[[CachedAnswer], bool], namespace: str | None = None) -> int:
        """Drop every entry `matches` accepts (of `namespace` only, when given); how many were dropped."""
        ...

    def entries(self) -> int: ...

    async def aclose(self) -> None: ...
