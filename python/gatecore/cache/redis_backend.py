"""The Redis backend: entries shared by every worker and replica that names the same server (the
top-level `redis:` connection), as msgpack values with Redis's own expiry.

A key is `<key_prefix>cache:<namespace>:<hex of the 16-byte key>`, so a namespace's entries can be
purged by pattern. Values are binary msgpack (cache/entry.py), whatever bytes the answer holds.
Every call is bounded by `redis.timeout_s`; a failure or a timeout makes the request go on uncached
(logged once, counted in `gatecore_cache_errors_total`), and for `redis.retry_after_s` the cache
does not try Redis at all. Stores are sent in the background, never on the request path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import msgspec
from redis.exceptions import RedisError

from gatecore.cache.entry import DECODER, ENCODER, CachedAnswer
from gatecore.cache.stats import CacheStats
from gatecore.config.limits import RedisConfig
from gatecore.store.redis_client import RedisClient, key_prefix, redis_client

log = logging.getLogger("gatecore.cache")
_FAILURES = (TimeoutError, RedisError, OSError)
_GLOB = str.maketrans({c: f"\\{c}" for c in "*?[]\\"})
_PURGE_BATCH = 500
_MAX_PENDING = 10_000  # stores in flight at most; more are dropped (Redis is too slow for them)


class RedisBackend:
    """Entries in Redis; fails open."""

    name = "redis"
    held_bytes = 0  # not this worker's to count: Redis holds them
    evictions = 0  # Redis's own (maxmemory policy), seen in its INFO

    def __init__(self, config: RedisConfig, stats: CacheStats):
        self.client: RedisClient = redis_client(config.url, config.timeout_s)
        self.prefix = key_prefix(config.url, config.key_prefix + "cache:")
        self.timeout_s = config.timeout_s
        self.retry_after_s = config.retry_after_s
        self.stats = stats
        self._down_until = 0.0
        self._pending: set[asyncio.Task[None]] = set()

    def _name(self, key: bytes, namespace: str) -> str:
        return f"{self.prefix}{namespace}:{key.hex()}"

    async def get(self, key: bytes, namespace: str) -> CachedAnswer | None:
        if self._down_until and time.monotonic() < self._down_until:
            return None
        try:
            async with asyncio.timeout(self.timeout_s):
                raw = await self.client.get(self._name(key, namespace))
        except _FAILURES as exc:
            self._failed(exc)
            return None
        self._reachable()
        if not isinstance(raw, bytes):  # None: no entry (the client never decodes to str)
            return None
        try:
            entry = DECODER.decode(raw)
        except msgspec.DecodeError:
            return None  # written by another version: a miss, overwritten by its answer
        return entry if entry.namespace == namespace else None

    def put(self, key: bytes, entry: CachedAnswer, ttl_s: float) -> None:
        if (self._down_until and time.monotonic() < self._down_until) or len(self._pending) >= _MAX_PENDING:
            return
        task = asyncio.get_running_loop().create_task(
            self._set(self._name(key, entry.namespace), entry, ttl_s)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _set(self, name: str, entry: CachedAnswer, ttl_s: float) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.client.set(name, ENCODER.encode(entry), px=max(1, int(ttl_s * 1000)))
        except _FAILURES as exc:
            self._failed(exc)

    async def purge(self, matches: Callable[[CachedAnswer], bool], namespace: str | None = None) -> int:
        """Drop the entries `matches` accepts, scanning only `namespace`'s keys when given."""
        pattern = f"{self.prefix.translate(_GLOB)}{namespace.translate(_GLOB) + ':' if namespace else ''}*"
        dropped = 0
        names: list[bytes] = []
        async for name in self.client.scan_iter(match=pattern, count=_PURGE_BATCH):
            names.append(name)
            if len(names) >= _PURGE_BATCH:
                dropped += await self._drop_matching(names, matches)
                names = []
        if names:
            dropped += await self._drop_matching(names, matches)
        return dropped

    async def _drop_matching(self, names: list[bytes], matches: Callable[[CachedAnswer], bool]) -> int:
        values = await self.client.mget(names)
        doomed = []
        for name, raw in zip(names, values, strict=True):
            if not isinstance(raw, bytes):
                continue
            try:
                entry = DECODER.decode(raw)
            except msgspec.DecodeError:
                doomed.append(name)
                continue
            if matches(entry):
                doomed.append(name)
        if doomed:
            await self.client.delete(*doomed)
        return len(doomed)

    def entries(self) -> int:
        return 0  # not counted here (Redis's DBSIZE covers every key of the server)

    def _failed(self, exc: BaseException) -> None:
        self.stats.errors += 1
        if not self._down_until:
            log.error("redis is unreachable for the cache (%s): requests go on uncached", type(exc).__name__)
        self._down_until = time.monotonic() + self.retry_after_s

    def _reachable(self) -> None:
        if self._down_until:
            self._down_until = 0.0
            log.warning("redis is reachable again: the cache is shared again")

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=2)
        await self.client.aclose()
