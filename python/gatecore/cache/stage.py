"""The cache stage (after the limits, before the upstream call) and what the worker builds for it.

A request to a cached model is keyed (rust/src/cache_key.rs: the namespace, the inbound API and the
hub-format body's canonical form, keyed-hashed); a live entry under that key answers it (cache/
replay.py) and the chain stops there. Otherwise the answer is relayed as usual while its writes are
kept on the ticket, and the writer (cache/writer.py) stores it once the request is over.

`x-gatecore-cache` says `hit`, `miss` (looked up, not found), or `bypass`: the request is not
deterministic (neither `temperature: 0` nor a `seed`, while `cache.deterministic_only`), its body
has no canonical form, or the client sent `cache-control: no-cache` (no lookup; the answer is
stored afresh). `cache-control: no-store` keeps the answer out of the cache.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any

from gatecore._core import cache_key
from gatecore.cache.backend import Backend
from gatecore.cache.entry import CachedAnswer
from gatecore.cache.memory import MemoryBackend
from gatecore.cache.policy import (
    ModelPolicy,
    asked_scope,
    asked_ttl,
    cache_secret,
    directives,
    model_policies,
    namespace_of,
    semantic_path,
    within,
)
from gatecore.cache.purges import PurgeRule, shared_purges
from gatecore.cache.replay import replay
from gatecore.cache.semantic import SemanticCache
from gatecore.cache.stats import CacheStats
from gatecore.cache.ticket import Ticket
from gatecore.cache.writer import CacheWriter
from gatecore.config.schema import GatecoreConfig
from gatecore.errors import Answered, InvalidRequest
from gatecore.pricing.book import PriceBook
from gatecore.request import RequestContext

_BYPASS = Ticket("bypass")
_HIT = Ticket("hit")
_clock = time.perf_counter_ns


class CacheStage:
    """Answers a repeated request from the cache, or marks it for storing."""

    __slots__ = (
        "backend",
        "deterministic_only",
        "local",
        "max_entry_bytes",
        "max_ttl_s",
        "models",
        "paced",
        "secret",
        "semantic",
        "stats",
        "teams",
    )

    def __init__(self, config: GatecoreConfig, backend: Backend, stats: CacheStats):
        self.models: dict[str, ModelPolicy] = model_policies(config)
        self.backend = backend
        # The in-process backend, looked up without a coroutine (None: Redis, which waits).
        self.local = backend if isinstance(backend, MemoryBackend) else None
        self.stats = stats
        self.secret = cache_secret(config)
        self.deterministic_only = config.cache.deterministic_only
        self.max_ttl_s = config.cache.max_ttl_s
        self.max_entry_bytes = config.cache.max_entry_bytes
        self.paced = config.cache.replay_pacing
        self.teams = config.cache.teams  # per team name: its own switch, TTL and scope
        self.semantic: SemanticCache | None = None

    def __call__(self, ctx: RequestContext) -> Awaitable[None] | None:
        """Nothing to await for a model that is not cached or a request that bypasses the cache
        (the chain then makes no coroutine of it); else the lookup."""
        route = ctx.route
        policy = self.models.get(route.name) if route is not None else None
        if policy is None or not ctx.endpoint.generates:  # embeddings, audio, images, rerank: not cached
            return None
        headers = ctx.headers
        no_cache = no_store = False
        control = headers.get("cache-control")
        if control:
            no_cache, no_store = directives(control)
        ttl_s = policy.ttl_s
        scope = policy.scope
        team = None
        if self.teams:
            caller = ctx.key
            team = (
                self.teams.get(caller.team.name) if caller is not None and caller.team is not None else None
            )
            if team is not None:
                if team.enabled is False:
                    ctx.cache = _BYPASS
                    self.stats.bypasses += 1
                    return None
                ttl_s = team.ttl_s if team.ttl_s is not None else ttl_s
                scope = team.scope if team.scope is not None else scope
        asked = headers.get("x-gatecore-cache-ttl")
        if asked is not None:
            ttl_s = asked_ttl(asked, self.max_ttl_s)
        narrowed = headers.get("x-gatecore-cache-namespace")
        if narrowed is not None:
            asked = asked_scope(narrowed, ctx.key, scope)
            if team is not None and team.scope is not None and not within(asked, scope):
                raise InvalidRequest(
                    f"x-gatecore-cache-namespace: this team's answers are cached per {scope}.",
                    code="invalid_cache_namespace",
                )
            scope = asked
        namespace = namespace_of(ctx.key, scope)
        # The inbound API is part of the key: an entry holds the bytes its client got.
        # (and the encoder's content type: Gemini streams as SSE or as one JSON array, one body).
        encoder = ctx.encoder
        api = ctx.endpoint.name if encoder is None else f"{ctx.endpoint.name}:{encoder.content_type}"
        keyed = cache_key(self.secret, namespace, api, ctx.body)
        if keyed is None or (self.deterministic_only and not keyed[1]):
            ctx.cache = _BYPASS
            self.stats.bypasses += 1
            return None
        key = keyed[0]
        limit = 0 if no_store else self.max_entry_bytes
        if no_cache:
            ctx.cache = Ticket("bypass", key, namespace, ttl_s, limit, self.paced)
            self.stats.bypasses += 1
            return None
        local = self.local
        if local is not None and (self.semantic is None or policy.threshold is None):
            started = _clock()
            entry = local.find(key, namespace)
            self.stats.lookup(_clock() - started)
            if entry is None:
                ctx.cache = Ticket("miss", key, namespace, ttl_s, limit, self.paced)
                self.stats.misses += 1
                return None
            return self._hit(ctx, entry, ())
        return self._lookup(ctx, policy, key, namespace, api, ttl_s, limit)

    async def _lookup(
        self,
        ctx: RequestContext,
        policy: ModelPolicy,
        key: bytes,
        namespace: str,
        api: str,
        ttl_s: float,
        limit: int,
    ) -> None:
        started = _clock()
        entry = await self.backend.get(key, namespace)
        self.stats.lookup(_clock() - started)
        extra: tuple[tuple[str, str], ...] = ()
        if entry is None and self.semantic is not None and policy.threshold is not None:
            match, probe = await self.semantic.lookup(
                ctx.body, namespace, api, ctx.api_key, ctx.request_id, policy.threshold
            )
            if match is not None:
                entry = match.entry
                self.stats.semantic_hits += 1
                extra = (
                    ("x-gatecore-cache-similarity", f"{match.similarity:.4f}"),
                    ("x-gatecore-cache-entry", match.entry_id),
                )
        else:
            probe = None
        if entry is None:
            ticket = ctx.cache = Ticket("miss", key, namespace, ttl_s, limit, self.paced)
            ticket.probe = probe
            self.stats.misses += 1
            return
        waits = self._hit(ctx, entry, extra)
        if waits is not None:
            await waits

    def _hit(
        self, ctx: RequestContext, entry: CachedAnswer, extra: tuple[tuple[str, str], ...]
    ) -> Awaitable[None] | None:
        """Answer with `entry` and raise `Answered`; a paced stream's replay is returned to be awaited
        (it raises `Answered` once sent)."""
        ctx.cache = _HIT
        self.stats.hits += 1
        # The chain marks a stage's end only when it returns; a hit answers from inside it, so the
        # lookup's end is marked here (the stage histogram, spans and `x-gatecore-timing` read it).
        ctx.stage_ends.append(_clock())
        paced = replay(ctx, entry, extra, self.paced)
        if paced is None:
            raise Answered
        return _answered_after(paced)


async def _answered_after(replaying: Awaitable[None]) -> None:
    await replaying
    raise Answered


class Cache:
    """The worker's cache: its backend, counters, stage and writer (one per worker)."""

    __slots__ = ("backend", "semantic", "stage", "stats", "writer")

    def __init__(self, config: GatecoreConfig, prices: PriceBook):
        self.stats = CacheStats()
        self.backend: Backend
        if config.cache.backend == "redis":
            assert config.redis is not None  # validate_cache asks for it
            # Imported only here: redis-py loads OpenTelemetry's API, which a worker without Redis
            # (or tracing) never needs.
            from gatecore.cache.redis_backend import RedisBackend

            self.backend = RedisBackend(config.redis, self.stats)
        else:
            self.backend = MemoryBackend(config.cache.memory_max_bytes, shared_purges())
        self.stage = CacheStage(config, self.backend, self.stats)
        self.writer = CacheWriter(self.backend, self.stats, config.cache.cache_tool_calls, prices)
        self.semantic: SemanticCache | None = None
        if config.cache.semantic is not None:
            self.semantic = SemanticCache(
                config.cache.semantic, semantic_path(config), self.stage.secret, self.stats
            )
            self.stage.semantic = self.writer.semantic = self.semantic

    async def purge(self, rule: PurgeRule) -> tuple[int, int]:
        """Drop what `rule` matches here, in the semantic store, and (in-process entries) in every
        other worker of the server before its next lookup: (exact entries here, semantic entries)."""
        backend = self.backend
        purged = await backend.purge(rule.matches, rule.namespace)
        if isinstance(backend, MemoryBackend) and backend.purges is not None:
            backend.purges.publish(rule)
        semantic = self.semantic
        return purged, await semantic.purge(rule.matches, rule.namespace) if semantic is not None else 0

    def series(self) -> tuple[list[list[Any]], list[list[Any]]]:
        """This worker's cache figures as metrics snapshot rows (telemetry/metrics.py `extra`)."""
        stats, backend = self.stats, self.backend
        labels = f'backend="{backend.name}"'
        counters: list[list[Any]] = [
            [f"gatecore_cache_{name}_total", labels, float(value)]
            for name, value in (
                ("hits", stats.hits),
                ("semantic_hits", stats.semantic_hits),
                ("misses", stats.misses),
                ("bypasses", stats.bypasses),
                ("stores", stats.stores),
                ("evictions", backend.evictions),
                ("errors", stats.errors),
                ("saved_usd", stats.saved_usd),
            )
        ]
        counters.append(["gatecore_cache_bytes", labels, float(backend.held_bytes)])
        lookups = [*(float(n) for n in stats.lookup_buckets), stats.lookup_sum_ns / 1e9]
        return counters, [["gatecore_cache_lookup_seconds", labels, lookups]]


def build_cache(config: GatecoreConfig, prices: PriceBook) -> Cache | None:
    """The worker's cache, or None when no model is cached."""
    if not model_policies(config):
        return None
    return Cache(config, prices)
