"""Console sessions: a cookie opened by signing in with a key, and the CSRF token of each session.

The cookie holds a random session id (256 bits); the store keeps only its SHA-256 and the keyed hash
of the key it was opened with (the auth table's own key, never the secret). Each use looks the key up
again, so a revoked, expired or rotated-out key ends its sessions at once, and the role is the key's
role of that moment. A session lasts `SESSION_TTL_S` at most; expired rows are deleted at sign-in.

The CSRF token is an HMAC of the session id: the page carries it, a change sends it back in the
`x-csrf-token` header (or a `csrf` form field), and a forged cross-site request cannot read it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

import msgspec

from gatecore.auth.jwt import JwtIdentity
from gatecore.auth.stage import AuthStage
from gatecore.auth.token_policy import token_policy
from gatecore.errors import AuthenticationFailed, Forbidden, StoreUnavailable
from gatecore.policy.key_policy import KeyPolicy
from gatecore.store.base import Store, StoreError

COOKIE = "gatecore_session"
SESSION_TTL_S = 8 * 3600
_MAX_COOKIE = 100
_JWT = "jwt:"  # a session id is 43 characters; anything much longer is not one


def session_id_of(headers: Any) -> str | None:
    """The session id in the request's `cookie` header, if any."""
    return cookie_of(headers, COOKIE, _MAX_COOKIE)


def cookie_of(headers: Any, wanted: str, longest: int) -> str | None:
    """The value of the cookie `wanted` (at most `longest` characters), if the request has it."""
    cookie = headers.get("cookie")
    if not cookie:
        return None
    for part in str(cookie).split(";"):
        name, _, value = part.strip().partition("=")
        if name == wanted and 0 < len(value) <= longest:
            return value
    return None


def csrf_token(session_id: str) -> str:
    """The CSRF token of a session (derived, so nothing more is stored)."""
    return hmac.new(session_id.encode(), b"gatecore console csrf", hashlib.sha256).hexdigest()


def check_csrf(session_id: str, sent: str | None) -> None:
    """403 unless `sent` is the session's CSRF token."""
    if not sent or not hmac.compare_digest(sent.encode(), csrf_token(session_id).encode()):
        raise Forbidden("A change made with the console's session needs its CSRF token.", code="csrf_failed")


def set_cookie(session_id: str, secure: bool) -> str:
    """The `set-cookie` value that opens a session (HttpOnly, SameSite=Strict, Secure over TLS)."""
    flags = f"; Path=/; Max-Age={SESSION_TTL_S}; HttpOnly; SameSite=Strict"
    return f"{COOKIE}={session_id}{flags}{'; Secure' if secure else ''}"


def clear_cookie(secure: bool) -> str:
    return f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{'; Secure' if secure else ''}"


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    """Console sessions in the store, resolved to the policy of the key they were opened with."""

    def __init__(self, store: Store, auth: AuthStage):
        self.store = store
        self.auth = auth

    async def open(self, secret: str) -> tuple[str, KeyPolicy]:
        """A new session for the key `secret` (401 for an unknown, revoked or expired key)."""
        policy = await self.auth.authenticate(secret)
        if policy is None:
            raise AuthenticationFailed("Sign-in needs auth to be configured (auth.master_key).")
        if self.auth.hasher.digest(secret) not in self.auth.table:
            # A bearer token (JWT) is no key of the table a session can follow (OIDC sign-in is).
            raise AuthenticationFailed("Sign in with an API key.")
        principal = self.auth.hasher.digest(secret).hex()
        return await self._insert(principal, time.time() + SESSION_TTL_S), policy

    async def open_token(self, identity: JwtIdentity) -> tuple[str, KeyPolicy]:
        """A new session for a verified OIDC ID token's identity, ending when the token expires
        (8 h at most). Its policy is the token's, rebuilt from the identity on each use."""
        principal = _JWT + msgspec.json.encode(identity).decode()
        policy = self._token_policy(principal)
        return await self._insert(principal, min(time.time() + SESSION_TTL_S, identity.expires_at)), policy

    def _token_policy(self, principal: str) -> KeyPolicy:
        jwt = self.auth.jwt
        if jwt is None:  # the config changed since: such sessions end
            raise AuthenticationFailed("The console session has ended; sign in again.", code="session_ended")
        identity = msgspec.json.decode(principal[len(_JWT) :], type=JwtIdentity)
        return token_policy(identity, self.auth.teams, self.auth.users, jwt.unscoped, jwt.match_users)

    async def _insert(self, principal: str, expires_at: float) -> str:
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        try:
            async with self.store.transaction() as tx:
                await tx.execute("DELETE FROM console_sessions WHERE expires_at < $1", now)
                await tx.execute(
                    "INSERT INTO console_sessions (id_hash, principal, created_at, expires_at) "
                    "VALUES ($1, $2, $3, $4)",
                    _id_hash(session_id),
                    principal,
                    now,
                    expires_at,
                )
        except StoreError as error:
            raise StoreUnavailable(f"The store is unavailable: {error}") from None
        return session_id

    async def policy(self, session_id: str) -> KeyPolicy:
        """The policy of the session's key; 401 when the session or the key is no longer valid."""
        try:
            row = await self.store.fetchone(
                "SELECT principal, expires_at FROM console_sessions WHERE id_hash = $1", _id_hash(session_id)
            )
        except StoreError as error:
            raise StoreUnavailable(f"The store is unavailable: {error}") from None
        if row is None or row[1] <= time.time():
            raise AuthenticationFailed("The console session has ended; sign in again.", code="session_ended")
        if row[0].startswith(_JWT):
            return self._token_policy(row[0])
        return await self.auth.authenticate_digest(bytes.fromhex(row[0]))

    async def close(self, session_id: str) -> None:
        """End a session (sign-out)."""
        try:
            async with self.store.transaction() as tx:
                await tx.execute("DELETE FROM console_sessions WHERE id_hash = $1", _id_hash(session_id))
        except StoreError as error:
            raise StoreUnavailable(f"The store is unavailable: {error}") from None
