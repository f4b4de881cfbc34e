"""Bearer JWTs from an OIDC issuer end to end: a loopback JWKS, tokens signed in the test, the openai SDK.

A token's team claim names a team of the store (its models apply), a token without one gets what
`auth.jwt.unscoped` names; a models claim narrows further;
every failed check is a 401 that says which; a rotated issuer key is picked up without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ..upstreams.jwks_server import JwksServer, SigningKey
from ..upstreams.openai_mock import MockUpstream
from .admin_client import AdminClient
from .gateway import MASTER_KEY, Gateway, GatewayFactory
from .test_identity import chat_status, identity_config, wait_for

ISSUER = "https://issuer.e2e.test"
AUDIENCE = "gatecore-e2e"


@pytest.fixture
def issuer() -> Iterator[tuple[JwksServer, SigningKey]]:
    key = SigningKey.rsa("k1")
    with JwksServer([key]) as server:
        yield server, key


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 600, **extra}


@pytest.fixture
def gw(
    gateway_factory: GatewayFactory,
    upstream: MockUpstream,
    issuer: tuple[JwksServer, SigningKey],
    tmp_path: Any,
) -> Gateway:
    config = identity_config(upstream, f"sqlite:///{tmp_path / 'jwt.db'}")
    config["auth"]["jwt"] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwks_url": issuer[0].url,
        "team_claim": "team",
        # Users are not matched, and a token without a store team gets gpt-a and gpt-c (issue 17:
        # without `unscoped` it would be a 403; tests/security/test_jwt_with_an_unknown_team_*.py).
        "user_claim": None,
        "unscoped": {"models": ["gpt-a", "gpt-c"]},
        "models_claim": "models",
        "jwks_refresh_s": 1,
        "jwks_min_refetch_s": 0.2,
    }
    return gateway_factory(config, workers=2)


def test_team_claim_applies_the_store_team_and_models_claim_narrows(
    gw: Gateway, issuer: tuple[JwksServer, SigningKey]
) -> None:
    _, key = issuer
    AdminClient(gw, MASTER_KEY).ok("POST", "/teams", {"name": "search", "models": ["gpt-a", "gpt-b"]}, 201)
    in_team = key.sign(claims(team="search"))
    wait_for(gw, in_team, 200, model="gpt-b")
    assert chat_status(gw, in_team, "gpt-c") == (403, "model_not_allowed")
    narrowed = key.sign(claims(team="search", models=["gpt-a"]))
    assert chat_status(gw, narrowed, "gpt-a") == (200, None)
    assert chat_status(gw, narrowed, "gpt-b") == (403, "model_not_allowed")
    no_team = key.sign(claims(models=["gpt-c"]))
    assert chat_status(gw, no_team, "gpt-c") == (200, None)
    assert chat_status(gw, key.sign(claims(team="nope")), "gpt-b") == (403, "model_not_allowed")
    # A token is not an admin credential.
    status, body = AdminClient(gw, in_team).call("GET", "/keys")
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert in_team not in gw.output()


def test_every_failed_check_is_a_401_that_says_which(
    gw: Gateway, issuer: tuple[JwksServer, SigningKey]
) -> None:
    _, key = issuer
    stranger = SigningKey.rsa("k1")  # same kid, another key: a forged signature
    now = int(time.time())
    cases = [
        (key.sign(claims(exp=now - 120, iat=now - 600)), "token_expired"),
        (key.sign(claims(aud="someone-else")), "invalid_audience"),
        (key.sign(claims(iss="https://evil.example")), "invalid_issuer"),
        (stranger.sign(claims()), "invalid_signature"),
        (key.sign(claims(nbf=now + 600)), "token_not_yet_valid"),
    ]
    for token, code in cases:
        assert chat_status(gw, token) == (401, code), code
    assert chat_status(gw, MASTER_KEY) == (200, None)  # API keys still work beside JWTs


def test_issuer_key_rotation_is_picked_up_without_a_restart(
    gw: Gateway, issuer: tuple[JwksServer, SigningKey]
) -> None:
    server, old = issuer
    old_token = old.sign(claims())
    assert chat_status(gw, old_token) == (200, None)
    new = SigningKey.ec("k2")
    server.publish([old, new])
    new_token = new.sign(claims())
    # An unknown kid makes each worker refetch the JWKS (rate limited) and then verify.
    wait_for(gw, new_token, 200)
    server.publish([new])  # the old key is withdrawn: gone after the next refresh (1 s)
    wait_for(gw, old.sign(claims(sub="bob")), 401, "unknown_key_id")
    assert chat_status(gw, new_token) == (200, None)
