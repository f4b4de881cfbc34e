"""Virtual key secrets: generated once, shown once, stored only as a keyed hash.

HMAC-SHA-256 with a server secret (not a bare hash): a leaked database alone does not let anyone test
guesses offline.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gatecore.config import AuthConfig

KEY_PREFIX = "gk-"
_VISIBLE = 6  # characters after `gk-` that are safe to show


def new_key_secret() -> str:
    """A fresh key: `gk-` and 43 URL-safe characters (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def visible_prefix(secret: str) -> str:
    """The part of a key that may be shown: `gk-` plus 6 of its 43 random characters. Of any other
    key (a master or config key an operator chose, often short or a password), at most its first 3
    characters (a vendor-style `sk-`), and only when it is long enough that they give nothing away."""
    if secret.startswith(KEY_PREFIX):
        return secret[: len(KEY_PREFIX) + _VISIBLE]
    return secret[:3] if len(secret) >= _OTHER_SHOWN_FROM else ""


_OTHER_SHOWN_FROM = 20


def hash_secret(config: AuthConfig) -> str | None:
    """The server secret keying stored key hashes: auth.key_hash_secret, else the master key."""
    return config.key_hash_secret or config.master_key


_BLOCK = 64  # SHA-256's block size


class KeyHasher:
    """HMAC-SHA-256 of key secrets (RFC 2104): hex in the store, raw bytes in the lookup table.

    The inner and outer pads are hashed once here, so a lookup costs two SHA-256 finishes (about
    0.6 µs) instead of `hmac.digest`'s 1.8 µs, which sets the whole construction up on every call.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, server_secret: str):
        key = server_secret.encode()
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def digest(self, key_secret: str) -> bytes:
        inner = self._inner.copy()
        inner.update(key_secret.encode("utf-8", "surrogatepass"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def hexdigest(self, key_secret: str) -> str:
        """The form the store keeps."""
        return self.digest(key_secret).hex()
