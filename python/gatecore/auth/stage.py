"""The auth stage: who is calling, checked against an in-memory table (never the database).

The table holds the master key, the config file's static keys and the store's virtual keys, each by
the keyed hash of its secret. The store's part is replaced whole when the identity sync sees a change.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable
from typing import Any

from gatecore.auth.jwt import JwtVerifier, looks_like_jwt
from gatecore.auth.token_policy import token_policy
from gatecore.config import AuthConfig
from gatecore.errors import AuthenticationFailed, GatewayError, StoreUnavailable
from gatecore.identity.records import TEAM, USER, Tenant
from gatecore.identity.secrets import KeyHasher, hash_secret, visible_prefix
from gatecore.identity.snapshot import KeyTable
from gatecore.identity.sync import IdentitySync
from gatecore.policy.key_policy import MASTER_ID, KeyPolicy
from gatecore.request import RequestContext

log = logging.getLogger("gatecore.auth")


def key_prefix(secret: str) -> str:
    """The part of a key that is safe to show."""
    return visible_prefix(secret) + "…"


def client_secret(headers: Any) -> str | None:
    """The client's API key: `Authorization: Bearer <key>`, else `x-api-key` (Anthropic clients), else
    `x-goog-api-key` (Gemini clients)."""
    authorization = headers.get("authorization")
    if authorization is not None and authorization[:7].lower() == "bearer ":
        return str(authorization[7:].strip())
    key = headers.get("x-api-key") or headers.get("x-goog-api-key")
    return None if key is None else str(key)


class AuthStage:
    """Rejects requests without a valid key (401) and attaches the key's policy to the context."""

    __slots__ = ("enabled", "hasher", "identity", "jwt", "static", "stored", "table", "teams", "users")

    def __init__(self, config: AuthConfig):
        self.jwt = JwtVerifier(config.jwt) if config.jwt is not None else None
        self.teams: dict[str, Tenant] = {}
        self.users: dict[str, Tenant] = {}
        secret = hash_secret(config)
        # Without a configured secret, static keys still need a consistent in-memory hash.
        self.hasher = KeyHasher(secret or os.urandom(32).hex())
        self.static: KeyTable = {}
        if config.master_key:
            master = KeyPolicy(MASTER_ID, "master", key_prefix(config.master_key), None, source="master")
            master.role = "admin"
            self.static[self.hasher.digest(config.master_key)] = (master, None)
        for i, key in enumerate(config.keys):
            models = frozenset(key.models) if key.models is not None else None
            policy = KeyPolicy(
                f"config_{i}",
                key.name or key_prefix(key.key),
                key_prefix(key.key),
                models,
                source="config",
                rpm=key.rpm,
                tpm=key.tpm,
                max_parallel=key.max_parallel,
                budget_usd=key.budget_usd,
            )
            self.static[self.hasher.digest(key.key)] = (policy, None)
        self.table = self.static
        # On whenever the config names any credential source, whatever has loaded (fail closed);
        # off only when it names none and says so (auth.unauthenticated, checked by the config).
        self.enabled = config.has_credentials
        # Stored virtual keys exist only with a secret to hash them (a miss is a 503, not a 401,
        # until they have loaded: the store may be down at start). Set once they have.
        self.stored: bool | None = False if secret else None
        # The store's keys beyond the table (a miss, a key this worker just wrote); set by the sync.
        self.identity: IdentitySync | None = None

    def install(self, stored: KeyTable, tenants: list[Tenant]) -> None:
        """Replace the store's keys (static keys win on a clash; a clash is astronomically unlikely)
        and the teams and users that JWT claims name."""
        self.table = {**stored, **self.static}
        self.teams = {t.name: t for t in tenants if t.kind == TEAM}
        self.users = {t.name: t for t in tenants if t.kind == USER}
        if self.stored is False:
            self.stored = True

    def take_stored(self, other: AuthStage) -> None:
        """A config reload: serve the stored keys `other` has loaded until this stage's own sync has
        loaded them (the store may be down just then). Only when both hash secrets alike."""
        probe = "gatecore-hash-probe"
        if other.stored and self.stored is False and other.hasher.digest(probe) == self.hasher.digest(probe):
            stored = {digest: entry for digest, entry in other.table.items() if digest not in other.static}
            self.install(stored, [*other.teams.values(), *other.users.values()])

    def lookup(self, secret: str | None) -> KeyPolicy | None:
        """The policy of `secret`, or None when auth is off. Raises AuthenticationFailed otherwise."""
        if not self.enabled:
            return None
        if not secret:
            raise AuthenticationFailed(
                "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
                code="missing_api_key",
            )
        # A dict probe on a keyed hash: timing reveals nothing about stored hashes.
        return self.lookup_digest(self.hasher.digest(secret))

    def lookup_digest(self, digest: bytes) -> KeyPolicy:
        """The policy of the key whose keyed hash is `digest` (a console session keeps that, never
        the secret), checked like `lookup`: revoked, expired, rotated out."""
        entry = self.table.get(digest)
        if entry is None:
            if self.stored is False:
                raise StoreUnavailable(
                    "Stored API keys are not loaded yet (the store is unreachable); retry shortly."
                )
            raise AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        policy, valid_until = entry
        if policy.revoked:
            raise AuthenticationFailed("This API key has been revoked.", code="key_revoked")
        if policy.expires_at is not None or valid_until is not None:
            now = time.time()
            if policy.expires_at is not None and now >= policy.expires_at:
                raise AuthenticationFailed("This API key has expired.", code="key_expired")
            if valid_until is not None and now >= valid_until:
                raise AuthenticationFailed(
                    "This API key was rotated and its grace period has ended.", code="key_rotated"
                )
        return policy

    async def authenticate(self, secret: str | None) -> KeyPolicy | None:
        """Like `lookup`, and bearer JWTs too when `auth.jwt` is configured. A secret the table does
        not know is looked up in the store before the 401, so a key works on every worker the moment
        its 201 is sent, not at the next poll (bounded: see identity/sync.py)."""
        if self.jwt is not None and secret is not None and looks_like_jwt(secret):
            identity = await self.jwt.verify(secret)
            return token_policy(identity, self.teams, self.users, self.jwt.unscoped, self.jwt.match_users)
        try:
            return self.lookup(secret)
        except AuthenticationFailed as miss:
            if miss.code != "invalid_api_key" or self.identity is None or not secret:
                raise
            digest = self.hasher.digest(secret)
            entries = await self.identity.find(digest)
            if entries is None or digest not in entries:
                raise
            self._put(entries[digest][0].id, entries)
        # The key is in the table now: checked (revoked, expired, rotated) like any other.
        return self.lookup(secret)

    async def authenticate_digest(self, digest: bytes) -> KeyPolicy:
        """`lookup_digest`, looking a key the table does not know up in the store first (a key
        written on another worker a moment ago), as `authenticate` does."""
        try:
            return self.lookup_digest(digest)
        except AuthenticationFailed as miss:
            if miss.code != "invalid_api_key" or self.identity is None:
                raise
            entries = await self.identity.find(digest)
            if entries is None or digest not in entries:
                raise
            self._put(entries[digest][0].id, entries)
        return self.lookup_digest(digest)

    def attach_store(self, keys: IdentitySync) -> None:
        """Look up what the table does not know in the store through `keys` (the identity sync)."""
        self.identity = keys

    async def refresh_key(self, key_id: str) -> None:
        """Read one key back from the store into the table at once: called by the admin API after
        it wrote the key, so on this worker a new or rotated secret works and a revoked or replaced
        one is refused in the very next request. A store failure leaves it to the next poll."""
        if self.identity is None:
            return
        try:
            entries = await self.identity.entries_of(key_id)
        except GatewayError as exc:
            log.warning("cannot read key %s back from the store (%s); the next poll will", key_id, exc)
            return
        self._put(key_id, entries)

    def _put(self, key_id: str, entries: KeyTable) -> None:
        """Replace the key's entries in the table (its old secrets go: a rotation without grace, a
        revocation), keeping static keys first. The table is replaced whole, never changed in place,
        so a reload or a request never sees it half-written."""
        table = {digest: entry for digest, entry in self.table.items() if entry[0].id != key_id}
        table.update(entries)
        table.update(self.static)
        self.table = table

    def __call__(self, ctx: RequestContext) -> Awaitable[None] | None:
        # A key header first, else what the server took from the URL (Gemini's `key=` parameter).
        secret = ctx.api_key = client_secret(ctx.headers) or ctx.api_key
        # A key the table holds (every request but a new key's first and a JWT) is looked up here
        # without a coroutine (the chain awaits only what a stage returns); the rest is awaited.
        if self.jwt is None and secret and self.enabled:
            entry = self.table.get(self.hasher.digest(secret))
            if (
                entry is not None
                and not entry[0].revoked
                and entry[0].expires_at is None
                and entry[1] is None
            ):
                ctx.key = entry[0]
                return None
        return self._authenticate(ctx, secret)

    async def _authenticate(self, ctx: RequestContext, secret: str | None) -> None:
        ctx.key = await self.authenticate(secret)
