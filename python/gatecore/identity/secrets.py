"""Virtual key secrets: generated once, shown once, stored only as a keyed hash.

HMAC-SHA-256 with a server secret (not a bare hash): a leaked database alone does not let anyone test
guesses offline.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "gk-"
_VISIBLE = 6  # characters after `gk-` that are safe to show


def new_key_secret() -> str:
    """A fresh key: `gk-` and 43 URL-safe characters (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def visible_prefix(secret: str) -> str:
    """The part of a key that may be shown: `gk-` plus 6 characters (or 6 characters of any key)."""
    if secret.startswith(KEY_PREFIX):
        return secret[: len(KEY_PREFIX) + _VISIBLE]
    return secret[:_VISIBLE]


class KeyHasher:
    """Keyed hashes of key secrets, as stored and as looked up."""

    __slots__ = ("_secret",)

    def __init__(self, server_secret: str):
        self._secret = server_secret.encode()

    def digest(self, key_secret: str) -> str:
        return hmac.digest(self._secret, key_secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hex()
