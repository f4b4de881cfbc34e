"""An issuer's signing keys from its JWKS URL, held in memory and refreshed off the hot path.

Lookups are plain dict reads. Fetches (at start, every `refresh_s` in the background, and for a token
whose `kid` is unknown) run urllib in a worker thread, so the event loop never blocks on the issuer.
Concurrent callers share the fetch in flight; unknown-`kid` refetches happen at most once per
`min_refetch_s`, so tokens with made-up key ids cannot make the gateway hammer the issuer. A failed
fetch keeps the last good keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.client import HTTPException
from typing import Any
from urllib.parse import urlsplit

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from gatecore.config.jwt import ALGORITHM_KEY_TYPES, PublicKey

log = logging.getLogger("gatecore.auth")

MAX_JWKS_BYTES = 1024 * 1024
# While no key set was ever loaded, retry this often instead of waiting a whole refresh period.
UNLOADED_RETRY_S = 10.0
_PRIVATE_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


class VerificationKey:
    """One public key, and the algorithm its JWK pins it to (None: any that fits the key type)."""

    __slots__ = ("algorithm", "key")

    def __init__(self, key: PublicKey, algorithm: str | None):
        self.key = key
        self.algorithm = algorithm


class JwksError(Exception):
    """A JWKS document that cannot be used (the message names no key material)."""


def parse_jwks(body: bytes) -> dict[str | None, VerificationKey]:
    """The usable signing keys of a JWKS document, by `kid` (None for a key without one).

    Keys for encryption, symmetric (`oct`) keys and algorithms gatecore does not verify are skipped.
    Raises JwksError when the document is not a JWKS or holds no usable key.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise JwksError("the document is not JSON") from None
    entries = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise JwksError("the document has no 'keys' list")
    keys: dict[str | None, VerificationKey] = {}
    for entry in entries:
        key = _verification_key(entry)
        kid = entry.get("kid") if key is not None else None
        if key is not None and (kid is None or isinstance(kid, str)):
            keys.setdefault(kid, key)  # the first key published under a kid wins
    if not keys:
        raise JwksError(f"none of the document's {len(entries)} keys is a usable signing key")
    return keys


def _verification_key(entry: Any) -> VerificationKey | None:
    if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
        return None
    # Never `oct`: a symmetric key from a JWKS would let anyone who can read it sign tokens.
    if entry.get("kty") not in ("RSA", "EC", "OKP"):
        return None
    algorithm = entry.get("alg")
    if algorithm is not None and algorithm not in ALGORITHM_KEY_TYPES:
        return None
    try:
        key: Any = jwt.PyJWK(entry).key
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        # PyJWT's messages quote the JWK itself; it is not logged.
        return None
    if isinstance(key, _PRIVATE_KEY_TYPES):
        log.warning(
            "the JWKS publishes private key material (kid %r); using only its public half", entry.get("kid")
        )
        key = key.public_key()
    if not isinstance(key, PublicKey):
        return None
    return VerificationKey(key, algorithm)


def _download(url: str, timeout_s: float) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "gatecore"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body: bytes = response.read(MAX_JWKS_BYTES + 1)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the connection
        raise JwksError(f"HTTP {exc.code}") from None
    if len(body) > MAX_JWKS_BYTES:
        raise JwksError(f"the document is larger than {MAX_JWKS_BYTES} bytes")
    return body


def _safe_url(url: str) -> str:
    """The URL without user info, query or fragment, which may carry credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class JwksCache:
    """The signing keys at one JWKS URL. `start()` loads them and keeps them fresh until `close()`."""

    def __init__(
        self,
        url: str,
        *,
        refresh_s: float,
        min_refetch_s: float,
        timeout_s: float,
        on_change: Callable[[], None] | None = None,
    ):
        self.url = url
        self.refresh_s = refresh_s
        self.min_refetch_s = min_refetch_s
        self.timeout_s = timeout_s
        self.on_change = on_change
        self.keys: dict[str | None, VerificationKey] = {}
        self.loaded = False
        """True once a key set was fetched; failures after that keep serving it."""
        self.fetches = 0
        """Fetch attempts so far (successful or not)."""
        self._raw: bytes | None = None
        self._last_refetch = -float("inf")
        self._inflight: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None

    def get(self, kid: str | None) -> VerificationKey | None:
        """The key for `kid` from memory (a token without a kid may use a lone key). Never waits."""
        key = self.keys.get(kid)
        if key is None and kid is None and len(self.keys) == 1:
            key = next(iter(self.keys.values()))
        return key

    async def refetch_for(self, kid: str | None) -> VerificationKey | None:
        """The key for an unknown `kid` after refetching the JWKS, if the rate limit allows one.

        Joins the fetch in flight when there is one; otherwise starts one unless the last
        unknown-kid refetch was less than `min_refetch_s` ago.
        """
        if self._inflight is None:
            now = time.monotonic()
            if now - self._last_refetch < self.min_refetch_s:
                return self.get(kid)
            self._last_refetch = now
        await self.fetch()
        return self.get(kid)

    async def fetch(self) -> None:
        """Fetch the key set now, or wait for the fetch already in flight. Never raises on failure."""
        task = self._inflight
        if task is None:
            task = asyncio.create_task(self._fetch_once(), name="gatecore-jwks-fetch")
            self._inflight = task
            task.add_done_callback(self._fetch_done)
        # Shielded: a waiter that gives up must not cancel the fetch the others wait on.
        await asyncio.shield(task)

    def _fetch_done(self, task: asyncio.Task[None]) -> None:
        if self._inflight is task:
            self._inflight = None

    async def _fetch_once(self) -> None:
        self.fetches += 1
        try:
            body = await asyncio.wait_for(
                asyncio.to_thread(_download, self.url, self.timeout_s), self.timeout_s + 1.0
            )
            keys = parse_jwks(body)
        except (OSError, HTTPException, JwksError, ValueError) as exc:
            # urllib's errors name the status or the socket failure, not the URL's query.
            kept = f"keeping the last {len(self.keys)} keys" if self.loaded else "no keys loaded yet"
            log.warning("JWKS fetch from %s failed (%s); %s", _safe_url(self.url), _reason(exc), kept)
            return
        self.loaded = True
        if body == self._raw:
            return
        self._raw = body
        self.keys = keys
        log.info("JWKS from %s: %d signing keys", _safe_url(self.url), len(keys))
        if self.on_change is not None:
            self.on_change()

    async def start(self) -> None:
        """Load the keys (a failure is logged, not raised) and start the background refresh."""
        if self._refresher is not None:
            return
        await self.fetch()
        self._refresher = asyncio.create_task(self._refresh_forever(), name="gatecore-jwks-refresh")

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s if self.loaded else min(self.refresh_s, UNLOADED_RETRY_S))
            await self.fetch()

    async def close(self) -> None:
        """Stop the background refresh and any fetch in flight."""
        for task in (self._refresher, self._inflight):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._refresher = self._inflight = None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError):
        return (
            f"{type(exc.reason).__name__}: {exc.reason}" if isinstance(exc.reason, OSError) else "URL error"
        )
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, JwksError):
        return str(exc)
    return type(exc).__name__
