"""The `cache:` section (issue 19's contract) and a model's own `cache:` overrides."""

from __future__ import annotations

import msgspec

SCOPES = ("team", "key", "global")
BACKENDS = ("memory", "redis")


class SemanticCacheConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`cache.semantic`: a lookup by meaning after an exact miss (cache/semantic.py)."""

    embedding_model: str  # a gatecore model whose deployments serve /v1/embeddings
    threshold: float = 0.92  # cosine similarity; per model: models[].cache.threshold
    store: str = "sqlite"  # sqlite (sqlite-vec, the file `path`) | postgres (store.url, with pgvector)
    # The SQLite file (unset: `gatecore-cache.db` beside a SQLite store, else in the working directory).
    path: str | None = None
    # The most an embedding call may take before the request goes on uncached.
    timeout_s: float = 2.0
    # Characters of the conversation's text embedded at most (its end is kept).
    max_chars: int = 8192


class CacheConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`cache:` answers to repeated requests, per namespace (team by default)."""

    enabled: bool = False
    backend: str = "memory"  # memory | redis (the top-level `redis:` connection)
    ttl_s: float = 600.0
    scope: str = "team"  # team | key | global
    # The most a client's `x-gatecore-cache-ttl` may ask for.
    max_ttl_s: float = 86_400.0
    # Only requests with `temperature: 0` or a `seed` (anything else is a `bypass`).
    deterministic_only: bool = True
    # Answers that call tools are stored only when this is true.
    cache_tool_calls: bool = False
    # An answer larger than this is not stored.
    max_entry_bytes: int = 1024 * 1024
    # The in-process backend's bound over every entry's bytes, per worker (LRU beyond it).
    memory_max_bytes: int = 64 * 1024 * 1024
    # A hit counts against the tpm limits too (it always counts as a request for rpm).
    hits_count_tokens: bool = False
    # A streamed hit is sent with the original stream's gaps between writes (each at most 10 s), for
    # clients and benchmarks that measure timing; off: every write at once.
    replay_pacing: bool = False
    semantic: SemanticCacheConfig | None = None
    # Per team (by name): its own switch, TTL and scope, over the model's and the section's (a team
    # that must never share answers between its keys: `scope: key`; one that opts out: `enabled: false`).
    teams: dict[str, TeamCacheConfig] = msgspec.field(default_factory=dict)


class TeamCacheConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`cache.teams.<name>`: a team's own switch, TTL and scope (unset: the model's or the section's)."""

    enabled: bool | None = None
    ttl_s: float | None = None
    scope: str | None = None


class ModelCacheConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`models[].cache`: this model's own switch, TTL and scope (unset: the `cache:` section's)."""

    enabled: bool | None = None
    ttl_s: float | None = None
    scope: str | None = None
    threshold: float | None = None  # the semantic lookup's cosine similarity for this model


def validate_cache(
    cache: CacheConfig,
    model_caches: dict[str, ModelCacheConfig],
    has_redis: bool,
    store_url: str | None = None,
) -> list[str]:
    """`path: reason` for every value the types cannot reject."""
    errors: list[str] = []
    if cache.backend not in BACKENDS:
        errors.append(f"cache.backend: must be one of {', '.join(BACKENDS)}")
    if cache.backend == "redis" and not has_redis and cache.enabled:
        errors.append("cache.backend: 'redis' needs the top-level `redis:` connection")
    if cache.scope not in SCOPES:
        errors.append(f"cache.scope: must be one of {', '.join(SCOPES)}")
    errors.extend(
        f"cache.{name}: must be above 0 and at most a year"
        for name in ("ttl_s", "max_ttl_s")
        if not 0 < getattr(cache, name) <= 365 * 86_400
    )
    if not 0 < cache.max_entry_bytes <= 256 * 1024 * 1024:
        errors.append("cache.max_entry_bytes: must be between 1 and 268435456")
    if cache.memory_max_bytes < cache.max_entry_bytes:
        errors.append("cache.memory_max_bytes: must be at least cache.max_entry_bytes")
    semantic = cache.semantic
    if semantic is not None:
        if not 0 < semantic.threshold <= 1:
            errors.append("cache.semantic.threshold: must be above 0 and at most 1")
        if semantic.store not in ("sqlite", "postgres"):
            errors.append("cache.semantic.store: must be sqlite or postgres (store.url, with pgvector)")
        if semantic.store == "postgres" and not (store_url or "").startswith(
            ("postgresql://", "postgres://")
        ):
            errors.append("cache.semantic.store: 'postgres' needs a PostgreSQL store.url")
        if not 0 < semantic.timeout_s <= 60:
            errors.append("cache.semantic.timeout_s: must be above 0 and at most 60")
        if not 1 <= semantic.max_chars <= 1_000_000:
            errors.append("cache.semantic.max_chars: must be between 1 and 1000000")
    for team, own_team in cache.teams.items():
        if own_team.scope is not None and own_team.scope not in SCOPES:
            errors.append(f"cache.teams.{team[:100]}.scope: must be one of {', '.join(SCOPES)}")
        if own_team.ttl_s is not None and not 0 < own_team.ttl_s <= 365 * 86_400:
            errors.append(f"cache.teams.{team[:100]}.ttl_s: must be above 0 and at most a year")
    for model, own in model_caches.items():
        if own.scope is not None and own.scope not in SCOPES:
            errors.append(f"models.{model}.cache.scope: must be one of {', '.join(SCOPES)}")
        if own.threshold is not None and not 0 < own.threshold <= 1:
            errors.append(f"models.{model}.cache.threshold: must be above 0 and at most 1")
        if own.ttl_s is not None and not 0 < own.ttl_s <= 365 * 86_400:
            errors.append(f"models.{model}.cache.ttl_s: must be above 0 and at most a year")
    return errors
