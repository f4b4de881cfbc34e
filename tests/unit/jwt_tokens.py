"""Shared pieces for the JWT tests: keys made once per session, claims, configs and forged tokens."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gatecore.auth.jwt import JwtVerifier
from gatecore.config.jwt import JwtConfig
from gatecore.errors import AuthenticationFailed
from tests.upstreams.jwks_server import JwksServer, SigningKey

ISSUER = "https://idp.example.test/realms/acme"
AUDIENCE = "gatecore"


class Keys:
    """RSA and EC keys generated once: RSA generation costs tens of milliseconds each."""

    rsa1 = SigningKey.rsa("rsa-1")
    rsa2 = SigningKey.rsa("rsa-2")
    ec1 = SigningKey.ec("ec-1")
    # Another key that claims rsa-1's kid: what a forger without the issuer's private key has.
    forger = SigningKey.rsa("rsa-1")


def claims(**fields: Any) -> dict[str, Any]:
    """Valid claims for ISSUER/AUDIENCE, expiring in 10 minutes; `fields` override or add (None drops)."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-123",
        "team": "research",
        "gatecore_models": ["gpt-4o", "claude-sonnet"],
        "iat": now,
        "exp": now + 600,
    }
    base.update(fields)
    return {name: value for name, value in base.items() if value is not None}


def jwks_config(server: JwksServer, **fields: Any) -> JwtConfig:
    settings: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwks_url": server.url,
        "models_claim": "gatecore_models",
        "jwks_timeout_s": 2.0,
    }
    settings.update(fields)
    return JwtConfig(**settings)


@contextlib.asynccontextmanager
async def running(config: JwtConfig) -> AsyncIterator[JwtVerifier]:
    verifier = JwtVerifier(config)
    await verifier.start()
    try:
        yield verifier
    finally:
        await verifier.close()


async def rejection(verifier: JwtVerifier, token: str) -> AuthenticationFailed:
    """The AuthenticationFailed `verify` raises for `token`, checked not to quote the token."""
    with pytest.raises(AuthenticationFailed) as caught:
        await verifier.verify(token)
    error = caught.value
    assert error.status == 401
    for part in [token, *token.split(".")]:
        assert len(part) < 10 or part not in error.message
    return error


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token with any header, payload and signature bytes, as an attacker would build it."""
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(payload).encode())
    return f"{head}.{body}.{_b64(signature)}"


def hmac_token(secret: bytes, payload: dict[str, Any], kid: str | None = None) -> str:
    """An HS256 token whose HMAC secret is `secret` (for the key-confusion attack: the public key)."""
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(payload).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"
