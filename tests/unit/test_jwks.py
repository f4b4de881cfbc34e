"""The JWKS side of JwtVerifier against a real loopback issuer: refetch on an unknown kid (shared,
rate limited), rotation, background refresh, and an issuer that is down."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from gatecore.auth.jwks import JwksError, parse_jwks
from tests.unit.jwt_tokens import Keys, claims, hmac_token, jwks_config, rejection, running
from tests.upstreams.jwks_server import JwksServer


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `condition()` every 20 ms until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_unknown_kid_refetches_once_for_all_concurrent_requests() -> None:
    with JwksServer([Keys.rsa1]) as issuer:
        async with running(jwks_config(issuer)) as verifier:
            assert issuer.fetches == 1  # start() loaded the keys
            await verifier.verify(Keys.rsa1.sign(claims()))
            assert issuer.fetches == 1  # a known kid never fetches

            # The issuer rotates in rsa-2; 20 requests with distinct rsa-2 tokens arrive together
            # while the (slow) refetch is in flight.
            issuer.publish([Keys.rsa1, Keys.rsa2])
            issuer.delay_s = 0.3
            tokens = [Keys.rsa2.sign(claims(sub=f"user-{i}")) for i in range(20)]
            identities = await asyncio.gather(*(verifier.verify(token) for token in tokens))
            assert [identity.user for identity in identities] == [f"user-{i}" for i in range(20)]
            assert issuer.fetches == 2
            await verifier.verify(Keys.rsa2.sign(claims(sub="later")))
            assert issuer.fetches == 2


@pytest.mark.asyncio
async def test_rotation_removed_key_stops_after_the_next_refresh() -> None:
    with JwksServer([Keys.rsa1]) as issuer:
        async with running(jwks_config(issuer, jwks_refresh_s=1.0)) as verifier:
            old = Keys.rsa1.sign(claims())
            await verifier.verify(old)
            issuer.publish([Keys.rsa2])  # rsa-1 retired
            await verifier.verify(old)  # still valid until the refresh
            await wait_until(lambda: issuer.fetches >= 2)
            await wait_until(lambda: verifier.jwks is not None and verifier.jwks.get("rsa-1") is None)
            # Rejected even though it was verified (and remembered) before.
            assert (await rejection(verifier, old)).code == "unknown_key_id"
            assert (await verifier.verify(Keys.rsa2.sign(claims()))).user == "user-123"


@pytest.mark.asyncio
async def test_random_kids_cannot_hammer_the_issuer() -> None:
    with JwksServer([Keys.rsa1]) as issuer:
        async with running(jwks_config(issuer, jwks_min_refetch_s=0.5)) as verifier:
            assert issuer.fetches == 1

            def random_kid_token() -> str:
                return Keys.rsa2.sign(claims(), kid=uuid.uuid4().hex)

            for _ in range(3):  # bursts: concurrent, then one by one
                burst = [rejection(verifier, random_kid_token()) for _ in range(30)]
                errors = await asyncio.gather(*burst)
                errors += [await rejection(verifier, random_kid_token()) for _ in range(30)]
                assert {error.code for error in errors} == {"unknown_key_id"}
            # 180 unknown kids in well under 0.5 s: one refetch.
            assert issuer.fetches == 2
            await asyncio.sleep(0.55)
            await rejection(verifier, random_kid_token())
            assert issuer.fetches == 3
            # Known keys keep verifying from memory meanwhile.
            await verifier.verify(Keys.rsa1.sign(claims()))
            assert issuer.fetches == 3


@pytest.mark.asyncio
async def test_issuer_down_keeps_the_last_good_keys(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gatecore.auth")
    with JwksServer([Keys.rsa1]) as issuer:
        url = issuer.url + "?client_secret=hunter2-secret"
        config = jwks_config(issuer, jwks_url=url, jwks_refresh_s=1.0, jwks_min_refetch_s=0)
        async with running(config) as verifier:
            await verifier.verify(Keys.rsa1.sign(claims(sub="before")))

            issuer.fail_status = 503
            await wait_until(lambda: issuer.fetches >= 2)  # the background refresh failed
            assert (await verifier.verify(Keys.rsa1.sign(claims(sub="during-503")))).user == "during-503"
            # An unknown kid refetches, fails again, and keeps the old keys.
            assert (await rejection(verifier, Keys.rsa2.sign(claims()))).code == "unknown_key_id"

            issuer.stop()  # connection refused from now on
            assert verifier.jwks is not None
            await verifier.jwks.fetch()
            assert (await verifier.verify(Keys.rsa1.sign(claims(sub="refused")))).user == "refused"
            await verifier.verify(Keys.rsa1.sign(claims(sub="after")))

    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("HTTP 503" in message and "keeping the last 1 keys" in message for message in warnings)
    assert any("ConnectionRefusedError" in message for message in warnings)
    for record in caplog.records:
        assert "hunter2" not in record.getMessage()


@pytest.mark.asyncio
async def test_a_slow_issuer_times_out_without_blocking_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    with JwksServer([Keys.rsa1]) as issuer:
        async with running(jwks_config(issuer, jwks_timeout_s=0.3, jwks_min_refetch_s=0)) as verifier:
            issuer.delay_s = 1.0
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                for _ in range(10):
                    await asyncio.sleep(0.02)
                    ticks += 1

            started = time.monotonic()
            ticking = asyncio.create_task(tick())
            # An unknown kid waits for the refetch, which times out; the loop keeps running meanwhile.
            assert (await rejection(verifier, Keys.rsa2.sign(claims()))).code == "unknown_key_id"
            assert 0.25 < time.monotonic() - started < 1.0
            assert ticks >= 5  # a blocking fetch would have let none run
            await ticking
            assert (await verifier.verify(Keys.rsa1.sign(claims()))).user == "user-123"
    assert any("timed out" in record.getMessage() for record in caplog.records)


@pytest.mark.asyncio
async def test_issuer_down_at_start_then_back() -> None:
    with JwksServer([Keys.rsa1]) as issuer:
        issuer.fail_status = 500
        async with running(jwks_config(issuer, jwks_min_refetch_s=0.2)) as verifier:  # start() does not raise
            token = Keys.rsa1.sign(claims())
            assert (await rejection(verifier, token)).code == "signing_keys_unavailable"
            issuer.fail_status = None
            await asyncio.sleep(0.25)
            assert (await verifier.verify(token)).user == "user-123"


@pytest.mark.asyncio
async def test_tokens_without_kid() -> None:
    with JwksServer([Keys.rsa1]) as issuer:
        async with running(jwks_config(issuer, jwks_min_refetch_s=60)) as verifier:
            # One published key: a kid-less token uses it.
            assert (await verifier.verify(Keys.rsa1.sign(claims(), kid=None))).user == "user-123"
            assert (
                await rejection(verifier, Keys.forger.sign(claims(), kid=None))
            ).code == "invalid_signature"
        issuer.publish([Keys.rsa1, Keys.rsa2])
        async with running(jwks_config(issuer, jwks_min_refetch_s=60)) as verifier:
            # Several: which one is meant is unknown.
            assert (await rejection(verifier, Keys.rsa1.sign(claims(), kid=None))).code == "unknown_key_id"


@pytest.mark.asyncio
async def test_symmetric_and_encryption_keys_in_the_jwks_are_ignored() -> None:
    secret = b"shared-secret-bytes-0123456789abcdef"
    oct_key = {"kty": "oct", "kid": "hs", "k": "c2hhcmVkLXNlY3JldC1ieXRlcy0wMTIzNDU2Nzg5YWJjZGVm"}
    enc_key = {**Keys.rsa2.public_jwk, "use": "enc"}
    with JwksServer() as issuer:
        issuer.publish([Keys.rsa1], extra=[oct_key, enc_key])
        config = jwks_config(issuer, algorithms=["RS256", "HS256"], jwks_min_refetch_s=60)
        async with running(config) as verifier:
            assert (
                await rejection(verifier, hmac_token(secret, claims(), kid="hs"))
            ).code == "algorithm_not_allowed"
            assert (await rejection(verifier, Keys.rsa1.sign(claims(), kid="hs"))).code == "unknown_key_id"
            assert (await rejection(verifier, Keys.rsa2.sign(claims()))).code == "unknown_key_id"
            await verifier.verify(Keys.rsa1.sign(claims()))


def test_parse_jwks() -> None:
    ec_no_alg = {key: value for key, value in Keys.ec1.public_jwk.items() if key != "alg"}
    document = {
        "keys": [
            Keys.rsa1.public_jwk,
            ec_no_alg,
            {**Keys.rsa2.public_jwk, "kid": "rsa-1"},  # a second key under a kid: the first wins
            {"kty": "RSA", "kid": "broken", "n": "AQAB"},
            {"kty": "oct", "kid": "hs", "k": "c2VjcmV0"},
            "not a key",
        ]
    }
    keys = parse_jwks(json.dumps(document).encode())
    assert sorted(k for k in keys if k) == ["ec-1", "rsa-1"]
    assert (keys["rsa-1"].algorithm, keys["ec-1"].algorithm) == ("RS256", None)
    assert keys["rsa-1"].key.public_numbers() == Keys.rsa1.private_key.public_key().public_numbers()  # type: ignore[union-attr]

    # A JWKS that leaks private parameters: only the public half is kept.
    leaked = ec.generate_private_key(ec.SECP256R1())
    private_jwk = {**ECAlgorithm.to_jwk(leaked, as_dict=True), "kid": "leaky"}
    key = parse_jwks(json.dumps({"keys": [private_jwk]}).encode())["leaky"].key
    assert not hasattr(key, "sign")

    for body in (
        b"not json",
        b"[]",
        b'{"keys": {}}',
        b'{"keys": []}',
        b'{"keys": [{"kty": "oct", "k": "eA"}]}',
    ):
        with pytest.raises(JwksError):
            parse_jwks(body)


@pytest.mark.asyncio
async def test_close_stops_the_background_refresh() -> None:
    with JwksServer([Keys.rsa1]) as issuer:
        async with running(jwks_config(issuer, jwks_refresh_s=1.0)) as verifier:
            await wait_until(lambda: issuer.fetches >= 2)
        fetched = issuer.fetches
        assert verifier.jwks is not None and verifier.jwks._refresher is None
        await asyncio.sleep(1.2)
        assert issuer.fetches == fetched
