"""JwtConfig decoding and validate_jwt_config: every bad setting reported with its path."""

from __future__ import annotations

import datetime

import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.x509.oid import NameOID

from gatecore.auth.jwt import JwtVerifier
from gatecore.config.jwt import JwtConfig, load_public_key, validate_jwt_config
from tests.unit.jwt_tokens import AUDIENCE, ISSUER, Keys, claims

PATH = "auth.jwt"
JWKS_URL = "https://idp.example.test/protocol/openid-connect/certs"


def errors_of(**fields: object) -> list[str]:
    settings: dict[str, object] = {"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": JWKS_URL}
    settings.update(fields)
    return validate_jwt_config(msgspec.convert(settings, JwtConfig), PATH)


def test_defaults_and_decoding() -> None:
    config = msgspec.convert({"issuer": ISSUER, "audience": ["a", "b"], "jwks_url": JWKS_URL}, JwtConfig)
    assert (config.algorithms, config.leeway_s, config.jwks_refresh_s) == (["RS256", "ES256"], 30.0, 300.0)
    assert (config.team_claim, config.user_claim, config.models_claim) == ("team", "sub", None)
    assert config.required_claims == ["sub"]
    assert validate_jwt_config(config, PATH) == []
    assert errors_of(public_key_pem=Keys.rsa1.public_pem, jwks_url=None) == []
    assert errors_of(public_key_pem=Keys.ec1.public_pem, jwks_url=None, algorithms=["ES256"]) == []
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({"issuer": ISSUER, "audience": "a", "jwks_uri": JWKS_URL}, JwtConfig)
    with pytest.raises(msgspec.ValidationError, match="audience"):
        msgspec.convert({"issuer": ISSUER, "audience": 5, "jwks_url": JWKS_URL}, JwtConfig)


def test_exactly_one_key_source() -> None:
    both = f"{PATH}: set exactly one of jwks_url and public_key_pem"
    assert errors_of(jwks_url=None) == [both]
    assert errors_of(public_key_pem=Keys.rsa1.public_pem) == [both]


def test_algorithms() -> None:
    assert errors_of(algorithms=[]) == [f"{PATH}.algorithms: must name at least one algorithm"]
    errors = errors_of(algorithms=["RS256", "none", "HS256", "hs512", "XX1"])
    assert errors[0] == f"{PATH}.algorithms[1]: 'none' (unsigned tokens) is never accepted"
    assert errors[1].startswith(f"{PATH}.algorithms[2]: 'HS256' is symmetric")
    assert errors[2].startswith(f"{PATH}.algorithms[3]: 'hs512' is symmetric")
    assert errors[3].startswith(f"{PATH}.algorithms[4]: unknown algorithm 'XX1'")
    assert len(errors) == 4
    # No algorithm that can use the static key's type (one is enough: the defaults fit RSA and EC).
    errors = errors_of(public_key_pem=Keys.rsa1.public_pem, jwks_url=None, algorithms=["ES256", "EdDSA"])
    assert errors == [f"{PATH}.algorithms: none of them can verify with public_key_pem's RSA key"]


def test_bad_keys_and_urls() -> None:
    private_pem = Keys.rsa1.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    # X25519 (key agreement): a public key no JWT algorithm signs with. (DSA was the example until
    # cryptography deprecated it, warning on use.)
    x25519_pem = (
        x25519.X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    for pem, reason in (
        ("not a key", "not a PEM public key"),
        (private_pem, "private key"),
        (x25519_pem, "no JWT algorithm uses"),
    ):
        [error] = errors_of(public_key_pem=pem, jwks_url=None)
        assert error.startswith(f"{PATH}.public_key_pem: ") and reason in error, error
    assert "PRIVATE" not in errors_of(public_key_pem=private_pem, jwks_url=None)[0]
    for url in ("ftp://idp/certs", "idp.example.test/certs", "https://:80/x"):
        assert errors_of(jwks_url=url) == [f"{PATH}.jwks_url: not an http(s) URL"]
    assert errors_of(jwks_url="https://idp:99999/certs") == [f"{PATH}.jwks_url: has an invalid port"]
    # The URL may carry a secret: it is not echoed.
    assert "s3cr3t" not in errors_of(jwks_url="file:///etc?token=s3cr3t")[0]


def test_numbers_names_and_audiences() -> None:
    errors = errors_of(
        issuer="",
        audience=[],
        leeway_s=-1,
        jwks_refresh_s=0.5,
        jwks_min_refetch_s=-1,
        jwks_timeout_s=0,
        team_claim="",
        user_claim="",
        models_claim="",
        required_claims=["sub", ""],
    )
    assert errors == [
        f"{PATH}.issuer: must not be empty",
        f"{PATH}.audience: must name at least one audience",
        f"{PATH}.leeway_s: must be 0 or more",
        f"{PATH}.jwks_refresh_s: must be at least 1",
        f"{PATH}.jwks_min_refetch_s: must be 0 or more",
        f"{PATH}.jwks_timeout_s: must be greater than 0",
        f"{PATH}.team_claim: must not be empty",
        f"{PATH}.user_claim: must not be empty",
        f"{PATH}.models_claim: must not be empty",
        f"{PATH}.required_claims[1]: must not be empty",
    ]
    assert errors_of(audience=["ok", ""]) == [f"{PATH}.audience: must not be empty"]


@pytest.mark.asyncio
async def test_a_certificate_pem_gives_its_public_key() -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.example.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(Keys.ec1.private_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(Keys.ec1.private_key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    assert load_public_key(pem).public_numbers() == Keys.ec1.private_key.public_key().public_numbers()  # type: ignore[union-attr]
    config = JwtConfig(issuer=ISSUER, audience=AUDIENCE, public_key_pem=pem, algorithms=["ES256"])
    assert validate_jwt_config(config, PATH) == []
    assert (await JwtVerifier(config).verify(Keys.ec1.sign(claims()))).team == "research"


def test_unscoped_tokens_and_no_user_claim() -> None:
    config = msgspec.convert({"issuer": ISSUER, "audience": "a", "jwks_url": JWKS_URL}, JwtConfig)
    assert config.unscoped is None  # by default a token whose team does not resolve is refused
    assert errors_of(user_claim=None, unscoped={"models": ["m"], "rpm": 5, "budget_usd": 1.5}) == []
    assert errors_of(unscoped={"models": []}) == [f"{PATH}.unscoped.models: must name at least one model"]
    assert errors_of(unscoped={"models": ["m"], "tpm": -1, "max_parallel": -2}) == [
        f"{PATH}.unscoped.tpm: must be 0 or more",
        f"{PATH}.unscoped.max_parallel: must be 0 or more",
    ]
    with pytest.raises(msgspec.ValidationError, match="models"):
        msgspec.convert({"issuer": ISSUER, "audience": "a", "jwks_url": JWKS_URL, "unscoped": {}}, JwtConfig)


def test_console_sign_in_needs_its_client_id_among_the_audiences() -> None:
    base = {"issuer": ISSUER, "audience": [AUDIENCE], "public_key_pem": Keys.rsa1.public_pem}
    good = msgspec.convert(
        {**base, "audience": [AUDIENCE, "console"], "console": {"client_id": "console"}}, JwtConfig
    )
    assert validate_jwt_config(good, "auth.jwt") == []
    stray = msgspec.convert({**base, "console": {"client_id": "console"}}, JwtConfig)
    assert validate_jwt_config(stray, "auth.jwt") == [
        "auth.jwt.console.client_id: must be set and listed in auth.jwt.audience"
    ]
    no_openid = msgspec.convert(
        {**base, "audience": [AUDIENCE, "c"], "console": {"client_id": "c", "scopes": ["email"]}}, JwtConfig
    )
    assert validate_jwt_config(no_openid, "auth.jwt") == ["auth.jwt.console.scopes: must include openid"]
