"""Static API keys from the config file, checked against an in-memory table.

Keys are held as SHA-256 digests so the table never keeps a client secret in the clear.
"""

from __future__ import annotations

import hashlib
import logging

from gatecore.config import AuthConfig
from gatecore.errors import AuthenticationFailed
from gatecore.request import RequestContext

log = logging.getLogger("gatecore.auth")


class KeyPolicy:
    """What one key may do. `models` is None when every model is allowed."""

    __slots__ = ("models", "name", "prefix")

    def __init__(self, name: str, prefix: str, models: frozenset[str] | None):
        self.name = name
        self.prefix = prefix
        self.models = models

    def allows(self, model: str) -> bool:
        return self.models is None or model in self.models


def key_prefix(secret: str) -> str:
    """The part of a key that is safe to show: its first 6 characters."""
    return secret[:6] + "…"


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


class AuthStage:
    """Rejects requests without a known key (401) and attaches the key's policy to the context."""

    __slots__ = ("enabled", "keys")

    def __init__(self, config: AuthConfig):
        self.keys: dict[bytes, KeyPolicy] = {}
        if config.master_key:
            self.keys[_digest(config.master_key)] = KeyPolicy("master", key_prefix(config.master_key), None)
        for key in config.keys:
            models = frozenset(key.models) if key.models is not None else None
            self.keys[_digest(key.key)] = KeyPolicy(
                key.name or key_prefix(key.key), key_prefix(key.key), models
            )
        self.enabled = bool(self.keys)
        if not self.enabled:
            log.warning("auth is off: no master key and no keys are configured")

    def lookup(self, secret: str | None) -> KeyPolicy | None:
        """The policy of `secret`, or None when auth is off. Raises AuthenticationFailed otherwise."""
        if not self.enabled:
            return None
        if not secret:
            raise AuthenticationFailed(
                "Missing API key: send it as 'Authorization: Bearer <key>'.", code="missing_api_key"
            )
        # A dict lookup on a digest: equal-time comparison is not needed because the attacker never
        # learns anything about stored digests from timing of a hash-table probe on a random digest.
        policy = self.keys.get(_digest(secret))
        if policy is None:
            raise AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        return policy

    async def __call__(self, ctx: RequestContext) -> None:
        ctx.key = self.lookup(ctx.api_key)
