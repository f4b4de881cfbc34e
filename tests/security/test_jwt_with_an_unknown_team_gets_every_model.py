"""Issue 17, finding 8: a JWT whose team claim matched no store team got every model with no limits.

The review's replay: a validly signed token whose team claim is a typo, names a deleted team, or is
missing, and tokens whose user claim names no user, all answered 200 on every model. Now such a token
is a 403 that says which claim did not resolve, unless `auth.jwt.unscoped` allows it; then it gets the
models and limits named there, and no more.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ..e2e.admin_client import AdminClient
from ..e2e.gateway import MASTER_KEY, Gateway, GatewayFactory, run_cli, write_config
from ..e2e.test_identity import chat_status, identity_config, wait_for
from ..upstreams.jwks_server import JwksServer, SigningKey
from ..upstreams.openai_mock import MockUpstream

ISSUER = "https://issuer.security.test"
AUDIENCE = "gatecore-security"


@pytest.fixture
def issuer() -> Iterator[tuple[JwksServer, SigningKey]]:
    key = SigningKey.rsa("k1")
    with JwksServer([key]) as server:
        yield server, key


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 600, **extra}


def jwt_config(upstream: MockUpstream, server: JwksServer, store: str, **jwt: Any) -> dict[str, Any]:
    config = identity_config(upstream, store)
    config["auth"]["jwt"] = {"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": server.url, **jwt}
    return config


def test_unresolved_team_or_user_claims_are_refused(
    gateway_factory: GatewayFactory,
    upstream: MockUpstream,
    issuer: tuple[JwksServer, SigningKey],
    store_url: str,
) -> None:
    server, key = issuer
    gw: Gateway = gateway_factory(jwt_config(upstream, server, store_url))
    admin = AdminClient(gw, MASTER_KEY)
    admin.ok("POST", "/teams", {"name": "search", "models": ["gpt-a"]}, 201)
    admin.ok("POST", "/teams", {"name": "gone"}, 201)
    admin.ok("POST", "/teams", {"name": "other"}, 201)
    admin.ok("POST", "/users", {"name": "alice", "team": "search"}, 201)
    admin.ok("POST", "/users", {"name": "bob", "team": "gone"}, 201)
    admin.ok("POST", "/users", {"name": "olga", "team": "other"}, 201)
    # A token that resolves gets its team's models.
    good = key.sign(claims(team="search"))
    wait_for(gw, good, 200)
    assert chat_status(gw, good, "gpt-b") == (403, "model_not_allowed")
    bob = key.sign(claims(team="gone", sub="bob"))
    wait_for(gw, bob, 200, model="gpt-c")

    for token, code in (
        (key.sign(claims(team="serach")), "unknown_team"),  # a typo
        (key.sign(claims()), "missing_team_claim"),
        (key.sign(claims(team="search", sub="mallory")), "unknown_user"),
        (key.sign(claims(team="search", sub="olga")), "user_not_in_team"),
    ):
        for model in ("gpt-a", "gpt-c"):
            assert chat_status(gw, token, model) == (403, code), (code, model)

    # A deleted team's tokens stop working (its user goes first: a team in use cannot be deleted).
    assert admin.call("DELETE", "/users/bob")[0] == 204
    wait_for(gw, bob, 403, "unknown_user", model="gpt-c")
    assert admin.call("DELETE", "/teams/gone")[0] == 204
    wait_for(gw, bob, 403, "unknown_team", model="gpt-c")


def test_unscoped_tokens_get_only_what_the_config_names(
    gateway_factory: GatewayFactory,
    upstream: MockUpstream,
    issuer: tuple[JwksServer, SigningKey],
    tmp_path: Any,
) -> None:
    server, key = issuer
    store = f"sqlite:///{tmp_path / 'unscoped.db'}"
    gw: Gateway = gateway_factory(
        jwt_config(upstream, server, store, user_claim=None, unscoped={"models": ["gpt-c"], "rpm": 3})
    )
    stray = key.sign(claims(team="serach"))
    assert chat_status(gw, stray, "gpt-a") == (403, "model_not_allowed")  # spends one of the 3 too
    assert chat_status(gw, stray, "gpt-c") == (200, None)
    assert chat_status(gw, key.sign(claims()), "gpt-c") == (200, None)  # same subject: one rpm
    assert chat_status(gw, stray, "gpt-c") == (429, "rate_limit_exceeded")


def test_unscoped_settings_are_checked(upstream: MockUpstream, tmp_path: Any) -> None:
    with JwksServer([]) as server:
        bad = jwt_config(
            upstream, server, f"sqlite:///{tmp_path / 'c.db'}", unscoped={"models": ["gpt-z"], "rpm": -1}
        )
        path = write_config(bad, tmp_path / "bad.yaml")
        result = run_cli(["check", "--config", str(path)])
    assert result.returncode != 0
    assert "auth.jwt.unscoped.models[0]: unknown model 'gpt-z'" in result.stdout + result.stderr
    assert "auth.jwt.unscoped.rpm: must be 0 or more" in result.stdout + result.stderr
