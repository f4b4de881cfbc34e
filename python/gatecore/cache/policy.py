"""Which models are cached, for how long, in which namespace; the request's cache headers."""

from __future__ import annotations

import hashlib
import os

from gatecore.config.schema import GatecoreConfig
from gatecore.errors import InvalidRequest
from gatecore.policy.key_policy import KeyPolicy

_MAX_HEADER = 1024  # characters of a cache header read at most


class ModelPolicy:
    """One model's cache settings, resolved from its `cache:` and the section's."""

    __slots__ = ("scope", "threshold", "ttl_s")

    def __init__(self, ttl_s: float, scope: str, threshold: float | None):
        self.ttl_s = ttl_s
        self.scope = scope
        self.threshold = threshold  # the semantic lookup's; None: no semantic lookup


def model_policies(config: GatecoreConfig) -> dict[str, ModelPolicy]:
    """The policy of every cached model, by its client-facing name (a model left out is not cached)."""
    section = config.cache
    policies: dict[str, ModelPolicy] = {}
    for model in config.models:
        own = model.cache
        enabled = section.enabled if own is None or own.enabled is None else own.enabled
        if not enabled:
            continue
        ttl_s = own.ttl_s if own is not None and own.ttl_s is not None else section.ttl_s
        scope = own.scope if own is not None and own.scope is not None else section.scope
        semantic = section.semantic
        threshold = None
        if semantic is not None:
            threshold = own.threshold if own is not None and own.threshold is not None else semantic.threshold
        policies[model.name] = ModelPolicy(ttl_s, scope, threshold)
    return policies


def namespace_of(key: KeyPolicy | None, scope: str) -> str:
    """The namespace a request's key reads and writes: its team's, its own (`scope: key`, or a key
    with no team), or the one global namespace."""
    if scope == "global":
        return "global"
    if key is None:
        return "anonymous"  # served without keys (loopback): one caller
    if scope == "team" and key.team is not None:
        return f"team:{key.team.id}"
    return f"key:{key.id}"


def cache_secret(config: GatecoreConfig) -> bytes:
    """The exact key's 32-byte hashing secret: from the config's key-hashing secret or master key,
    so every worker and replica computes the same keys (the Redis backend shares them); a random
    one when the config has neither and entries stay in this process."""
    seed = config.auth.key_hash_secret or config.auth.master_key
    if seed is None:
        if config.cache.backend == "memory":
            return os.urandom(32)
        seed = config.redis.key_prefix if config.redis is not None else ""
    return hashlib.sha256(b"gatecore-cache\0" + seed.encode()).digest()


def directives(value: str) -> tuple[bool, bool]:
    """`(no_cache, no_store)` from a `cache-control` request header."""
    tokens = {part.strip().lower() for part in value[:_MAX_HEADER].split(",")}
    return "no-cache" in tokens, "no-store" in tokens


def asked_ttl(value: str, max_ttl_s: float) -> float:
    """The seconds an `x-gatecore-cache-ttl` header asks for: a whole number from 1 to
    `cache.max_ttl_s` (400 otherwise)."""
    text = value[:_MAX_HEADER].strip()
    if not text.isdigit() or len(text) > 12 or not 1 <= int(text) <= max_ttl_s:
        raise InvalidRequest(
            f"x-gatecore-cache-ttl must be a whole number of seconds from 1 to {max_ttl_s:g}.",
            code="invalid_cache_ttl",
        )
    return float(text)


def semantic_path(config: GatecoreConfig) -> str:
    """The semantic store's place: the store's PostgreSQL URL (`store: postgres`), else the SQLite
    file `cache.semantic.path`, else one beside a SQLite store."""
    semantic = config.cache.semantic
    if semantic is not None and semantic.store == "postgres":
        return config.store.url or ""
    if semantic is not None and semantic.path:
        return semantic.path
    url = config.store.url or ""
    if url.startswith("sqlite:///"):
        return os.path.join(os.path.dirname(url[len("sqlite:///") :]) or ".", "gatecore-cache.db")
    return "gatecore-cache.db"


_WIDTH = {"key": 0, "team": 1, "global": 2}


def within(asked: str, scope: str) -> bool:
    """Whether namespace scope `asked` shares answers no more widely than `scope`."""
    return _WIDTH[asked] <= _WIDTH[scope]


def asked_scope(value: str, key: KeyPolicy | None, scope: str) -> str:
    """The scope an `x-gatecore-cache-namespace` header asks for, within what the key may use: `key`
    (its own namespace) always, `team` when the key has a team, `global` only where the model's
    scope is global already; 400 otherwise (never another team's or key's namespace)."""
    asked = value[:_MAX_HEADER].strip().lower()
    if asked == "key" or (asked == "team" and key is not None and key.team is not None) or asked == scope:
        return asked
    raise InvalidRequest(
        "x-gatecore-cache-namespace may be 'key', 'team' (for a key of a team) or the model's own scope.",
        code="invalid_cache_namespace",
    )
