"""`/admin/v1/cache`: the response cache's figures and its purge.

`GET /cache` gives the figures of the worker that answers (in-process entries are per worker; Redis
and the semantic store are shared). `POST /cache/purge` drops entries by namespace, model and age,
in every worker (cache/purges.py).
A caller confined to a team (team_admin, or a viewer's read) acts on its team's namespace only: a
team_admin that names another namespace, or none while the cache holds other teams', gets 403 or
only its own team purged; an admin or the master key purges anything.
"""

from __future__ import annotations

import os
import time

import msgspec

from gatecore.admin.access import Caller
from gatecore.cache.purges import PurgeRule
from gatecore.cache.stage import Cache
from gatecore.errors import Forbidden, NotFound, Unprocessable


class CachePurge(msgspec.Struct, forbid_unknown_fields=True):
    """What to drop; every field given must match (none: everything the caller may purge)."""

    # team:<team id> | key:<key id> | global | anonymous (a team_admin: its team's, the default)
    namespace: str | None = msgspec.field(default=None)
    model: str | None = None  # the client-facing model name
    older_than_s: float | None = None  # stored at least this many seconds ago


class CachePurged(msgspec.Struct):
    # In-process entries: those the answering worker dropped (`worker_pid`); every other worker of
    # the server drops its own before its next lookup (cache/purges.py).
    purged: int
    semantic_purged: int
    namespace: str | None
    backend: str
    worker_pid: int


class CacheStatsOut(msgspec.Struct):
    backend: str
    worker_pid: int
    entries: int
    bytes: int
    hits: int
    semantic_hits: int
    misses: int
    bypasses: int
    stores: int
    evictions: int
    errors: int
    saved_usd: float


MAX_TEXT = 300


class CacheApi:
    """The cache routes over the worker's cache (None: the cache is off, every route is a 404)."""

    def __init__(self, cache: Cache | None):
        self.cache = cache

    def _cache(self) -> Cache:
        if self.cache is None:
            raise NotFound("The response cache is off (cache.enabled).")
        return self.cache

    async def stats(self, caller: Caller) -> CacheStatsOut:
        caller.require_global("the cache's figures")
        cache = self._cache()
        stats, backend = cache.stats, cache.backend
        return CacheStatsOut(
            backend=backend.name,
            worker_pid=os.getpid(),
            entries=backend.entries(),
            bytes=backend.held_bytes,
            hits=stats.hits,
            semantic_hits=stats.semantic_hits,
            misses=stats.misses,
            bypasses=stats.bypasses,
            stores=stats.stores,
            evictions=backend.evictions,
            errors=stats.errors,
            saved_usd=stats.saved_usd,
        )

    async def purge(self, caller: Caller, request: CachePurge) -> CachePurged:
        caller.require_writer()
        cache = self._cache()
        namespace = request.namespace
        for name, value in (("namespace", namespace), ("model", request.model)):
            if value is not None and not 0 < len(value) <= MAX_TEXT:
                raise Unprocessable(f"'{name}' must be 1-{MAX_TEXT} characters.", param=name)
        if request.older_than_s is not None and not 0 <= request.older_than_s <= 100 * 366 * 86_400:
            raise Unprocessable("'older_than_s' must be between 0 and a century.", param="older_than_s")
        if caller.scope is not None:
            own = f"team:{caller.scope}"
            if namespace is None:
                namespace = own
            elif namespace != own:
                raise Forbidden(f"A {caller.role} key of a team may only purge its own team's namespace.")
        older = request.older_than_s
        cutoff = time.time() - (older if older is not None else 0.0)
        purged, semantic = await cache.purge(PurgeRule(namespace, request.model, cutoff))
        return CachePurged(purged, semantic, namespace, cache.backend.name, os.getpid())
