"""JwtVerifier: what a valid token yields, and each check that rejects a token, with its code.

Keys are generated locally, the JWKS is served over real loopback HTTP (tests/upstreams/jwks_server.py)
and tokens are signed with PyJWT; an attacker's tokens are built by hand.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import jwt
import pytest

from gatecore.auth.jwt import JwtIdentity, JwtVerifier, looks_like_jwt
from gatecore.config.jwt import JwtConfig
from tests.unit.jwt_tokens import (
    AUDIENCE,
    ISSUER,
    Keys,
    claims,
    hmac_token,
    jwks_config,
    rejection,
    running,
    unsigned_token,
)
from tests.upstreams.jwks_server import JwksServer


@pytest.fixture
def issuer() -> Iterator[JwksServer]:
    with JwksServer([Keys.rsa1, Keys.ec1]) as server:
        yield server


def test_looks_like_jwt_tells_tokens_from_api_keys() -> None:
    token = Keys.rsa1.sign(claims())
    assert looks_like_jwt(token)
    assert looks_like_jwt(
        unsigned_token({"alg": "none", "typ": "JWT"}, claims())
    )  # so it is reported as unsigned
    for other in (
        "gk-abc123def456",
        "sk-proj-abc",
        "",
        "eyJ",
        "eyJhbGc.payload",
        "a.b.c",
        token + ".x",
        token[:-4] + " x",
    ):
        assert not looks_like_jwt(other), other


@pytest.mark.asyncio
async def test_valid_tokens_give_team_user_and_models_from_the_configured_claims(issuer: JwksServer) -> None:
    async with running(jwks_config(issuer)) as verifier:
        payload = claims()
        identity = await verifier.verify(Keys.rsa1.sign(payload))
        assert identity == JwtIdentity(
            subject="user-123",
            team="research",
            user="user-123",
            models=frozenset({"gpt-4o", "claude-sonnet"}),
            expires_at=payload["exp"],
        )
        ec_identity = await verifier.verify(
            Keys.ec1.sign(claims(sub="svc-9", team=None, gatecore_models=None))
        )
        assert (ec_identity.user, ec_identity.team, ec_identity.models) == ("svc-9", None, None)

    # Other claim names, nested paths, a space-separated models string and a list of audiences.
    config = jwks_config(
        issuer,
        audience=["other-app", AUDIENCE],
        team_claim="org.team",
        user_claim="email",
        models_claim="access.models",
        required_claims=["email"],
    )
    async with running(config) as verifier:
        token = Keys.rsa1.sign(
            claims(org={"team": 42}, email="a@example.test", access={"models": "m1 m2"}, team=None)
        )
        identity = await verifier.verify(token)
        assert (identity.team, identity.user, identity.models) == (
            "42",
            "a@example.test",
            frozenset({"m1", "m2"}),
        )


@pytest.mark.asyncio
async def test_time_claims_and_leeway(issuer: JwksServer) -> None:
    now = int(time.time())
    async with running(jwks_config(issuer, leeway_s=30)) as verifier:
        assert (await verifier.verify(Keys.rsa1.sign(claims(exp=now - 10)))).expires_at == now - 10
        await verifier.verify(Keys.rsa1.sign(claims(nbf=now + 10, iat=now + 10)))
        assert (await rejection(verifier, Keys.rsa1.sign(claims(exp=now - 60)))).code == "token_expired"
        error = await rejection(verifier, Keys.rsa1.sign(claims(nbf=now + 120)))
        assert error.code == "token_not_yet_valid"
        assert (
            await rejection(verifier, Keys.rsa1.sign(claims(iat=now + 120)))
        ).code == "token_not_yet_valid"
    async with running(jwks_config(issuer, leeway_s=0)) as verifier:
        assert (await rejection(verifier, Keys.rsa1.sign(claims(exp=now - 10)))).code == "token_expired"
        assert (await rejection(verifier, Keys.rsa1.sign(claims(nbf=now + 10)))).code == "token_not_yet_valid"


@pytest.mark.asyncio
async def test_a_remembered_token_still_expires(issuer: JwksServer) -> None:
    async with running(jwks_config(issuer, leeway_s=0)) as verifier:
        token = Keys.rsa1.sign(claims(exp=int(time.time()) + 1))
        await verifier.verify(token)
        await verifier.verify(token)  # from the verified-token cache
        await asyncio.sleep(
            jwt.decode(token, options={"verify_signature": False})["exp"] - time.time() + 0.05
        )
        assert (await rejection(verifier, token)).code == "token_expired"


@pytest.mark.asyncio
async def test_wrong_audience_issuer_and_signature(issuer: JwksServer) -> None:
    async with running(jwks_config(issuer)) as verifier:
        cases = {
            "invalid_audience": Keys.rsa1.sign(claims(aud="someone-else")),
            "invalid_issuer": Keys.rsa1.sign(claims(iss="https://evil.example.test")),
            # Signed by another key under the issuer's kid.
            "invalid_signature": Keys.forger.sign(claims()),
        }
        for code, token in cases.items():
            error = await rejection(verifier, token)
            assert error.code == code, (code, error.message)
        # A valid token with its signature swapped for another token's.
        good, other = Keys.rsa1.sign(claims()), Keys.rsa1.sign(claims(sub="other"))
        spliced = good.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]
        assert (await rejection(verifier, spliced)).code == "invalid_signature"


@pytest.mark.asyncio
async def test_unsigned_and_symmetric_tokens_are_refused(issuer: JwksServer) -> None:
    public_pem = Keys.rsa1.public_pem.encode()
    # Even a config that lists them (it would fail validation) never accepts `none` or HS256.
    config = jwks_config(issuer, algorithms=["none", "HS256", "RS256", "ES256"])
    async with running(config) as verifier:
        tokens = [
            unsigned_token({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, claims()),
            unsigned_token({"alg": "none", "kid": "rsa-1"}, claims(), b"sig"),
            unsigned_token({"alg": "NONE"}, claims()),
            hmac_token(public_pem, claims(), kid="rsa-1"),  # key confusion: the public key as HMAC secret
            hmac_token(public_pem, claims()),
            unsigned_token({"kid": "rsa-1"}, claims(), b"sig"),  # no alg at all
        ]
        for token in tokens:
            assert (await rejection(verifier, token)).code == "algorithm_not_allowed"
        # An allowed algorithm that does not fit the key the kid names (EC algorithm, RSA key).
        forged = unsigned_token({"alg": "ES256", "kid": "rsa-1"}, claims(), b"x" * 64)
        assert (await rejection(verifier, forged)).code == "algorithm_not_allowed"


@pytest.mark.asyncio
async def test_a_jwk_pins_its_algorithm(issuer: JwksServer) -> None:
    # rsa-1's JWK says RS256: a PS256 token from the same private key is refused.
    async with running(jwks_config(issuer, algorithms=["RS256", "PS256"])) as verifier:
        token = jwt.encode(claims(), Keys.rsa1.private_key, algorithm="PS256", headers={"kid": "rsa-1"})
        assert (await rejection(verifier, token)).code == "algorithm_not_allowed"


@pytest.mark.asyncio
async def test_malformed_tokens(issuer: JwksServer) -> None:
    header = unsigned_token({"alg": "RS256", "kid": "rsa-1"}, {}).split(".")[0]
    async with running(jwks_config(issuer)) as verifier:
        tokens = [
            "",
            "not a token",
            "gk-abcdef123456",
            "eyJhbGciOiJSUzI1NiJ9",
            "eyJhbGciOiJSUzI1NiJ9..sig",
            "eyJ!!!.eyJ.sig",
            "eyJub3QganNvbg.eyJzdWIiOiJ1In0.c2ln",  # header is not JSON
            "eyJbMSwgMl0.eyJzdWIiOiJ1In0.c2ln",  # header is JSON but not an object
            f"{header}.{'A' * 20_000}.c2ln",  # too long to look at
            unsigned_token({"alg": "RS256", "kid": 7}, claims(), b"sig"),  # kid is not a string
            # A critical extension gatecore does not implement, even on a correctly signed token.
            Keys.rsa1.sign(claims(), header={"crit": ["exp-ext"], "exp-ext": 1}),
        ]
        for token in tokens:
            assert (await rejection(verifier, token)).code == "malformed_token", token[:40]
        # Payloads are read only once the signature verifies: correctly signed, but not claims.
        for payload in (b"not json", b"[1, 2]", json.dumps(claims(exp="soon")).encode()):
            token = jwt.api_jws.encode(payload, Keys.rsa1.private_key, "RS256", headers={"kid": "rsa-1"})
            assert (await rejection(verifier, token)).code == "malformed_token", payload
        forged = f"{header}.bm90IGpzb24.c2ln"
        assert (await rejection(verifier, forged)).code == "invalid_signature"


@pytest.mark.asyncio
async def test_required_claims(issuer: JwksServer) -> None:
    config = jwks_config(issuer, required_claims=["sub", "email", "org.id"])
    async with running(config) as verifier:
        full = claims(email="a@example.test", org={"id": "o1"})
        await verifier.verify(Keys.rsa1.sign(full))
        for dropped in ("sub", "email", "exp", "iss", "aud"):
            error = await rejection(verifier, Keys.rsa1.sign({k: v for k, v in full.items() if k != dropped}))
            assert (error.code, f"'{dropped}'" in error.message) == ("missing_claim", True), dropped
        error = await rejection(verifier, Keys.rsa1.sign({**full, "org": {"name": "x"}}))
        assert (error.code, "'org.id'" in error.message) == ("missing_claim", True)


@pytest.mark.asyncio
async def test_claims_of_the_wrong_type(issuer: JwksServer) -> None:
    async with running(jwks_config(issuer)) as verifier:
        for token in (
            Keys.rsa1.sign(claims(team={"name": "x"})),
            Keys.rsa1.sign(claims(team=True)),
            Keys.rsa1.sign(claims(gatecore_models=["ok", 3])),
            Keys.rsa1.sign(claims(gatecore_models={"m": 1})),
            Keys.rsa1.sign(claims(sub=12345)),
        ):
            assert (await rejection(verifier, token)).code == "invalid_claim"


@pytest.mark.asyncio
async def test_static_pem_key() -> None:
    for key, other in ((Keys.rsa1, Keys.forger), (Keys.ec1, Keys.rsa2)):
        config = JwtConfig(issuer=ISSUER, audience=AUDIENCE, public_key_pem=key.public_pem)
        verifier = JwtVerifier(config)
        await verifier.start()  # nothing to fetch
        assert verifier.jwks is None
        # The kid does not matter with one static key, nor does its absence.
        assert (await verifier.verify(key.sign(claims(), kid="anything"))).user == "user-123"
        assert (await verifier.verify(key.sign(claims(sub="no-kid"), kid=None))).user == "no-kid"
        error = await rejection(verifier, other.sign(claims()))
        assert error.code == ("invalid_signature" if other is Keys.forger else "algorithm_not_allowed")
        pem = key.public_pem.encode()
        assert (await rejection(verifier, hmac_token(pem, claims()))).code == "algorithm_not_allowed"
        await verifier.close()
