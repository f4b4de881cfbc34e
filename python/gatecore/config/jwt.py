"""Config for JWT bearer tokens from an OIDC issuer (`auth.jwt`), and its checks.

Tokens are verified with the issuer's public keys only: from its JWKS URL (fetched, cached and
refreshed) or from one static PEM. Symmetric (HS*) algorithms are never accepted, so a public key can
never be used as an HMAC secret (the key-confusion attack).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import msgspec
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

# The public keys tokens can be verified with.
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey

# The asymmetric algorithms PyJWT verifies with `cryptography`, by the key type each needs.
ALGORITHM_KEY_TYPES: dict[str, tuple[type, ...]] = {
    **{alg: (rsa.RSAPublicKey,) for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
    **{alg: (ec.EllipticCurvePublicKey,) for alg in ("ES256", "ES384", "ES512", "ES256K")},
    "EdDSA": (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey),
}


class UnscopedTokens(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a token gets whose team or user claim names no tenant of the store (or that has no team
    claim), when the config allows such tokens at all: these models and limits, per token subject,
    narrowed further by whatever did resolve and by the token's models claim."""

    # The models such a token may use: required, so allowing unscoped tokens never means "every model".
    models: list[str]
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    budget_usd: float | None = None


class ConsoleSignIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`auth.jwt.console`: sign-in to the console (/ui/) with the issuer, by OpenID Connect's
    authorization code flow with PKCE. The issuer's endpoints come from its discovery document
    (`{issuer}/.well-known/openid-configuration`); the ID token is checked like any bearer JWT, with
    `client_id` as its audience (list it in `audience` too)."""

    client_id: str
    # A confidential client's secret (sent to the token endpoint); none for a public client.
    client_secret: str | None = None
    scopes: list[str] = msgspec.field(default_factory=lambda: ["openid"])


class JwtConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which bearer JWTs are accepted and how their claims map to a team, a user and models.

    Exactly one of `jwks_url` and `public_key_pem` is set. `exp`, `iss` and `aud` are always required
    and checked; `required_claims` names more (a dotted name reaches into nested objects).

    A token's team claim must name a team of the store, and its user claim (unless `user_claim` is
    null) a user of the store in that team; otherwise the token is refused (403) unless `unscoped`
    says what such tokens get (issue 17: a typo or a deleted team must not mean "everything").
    """

    issuer: str
    audience: str | list[str]
    jwks_url: str | None = None
    # A PEM public key (`BEGIN PUBLIC KEY`) or certificate (`BEGIN CERTIFICATE`).
    public_key_pem: str | None = None
    algorithms: list[str] = msgspec.field(default_factory=lambda: ["RS256", "ES256"])
    # Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
    leeway_s: float = 30.0
    # Seconds between background JWKS refreshes (a removed key stops verifying after the next one).
    jwks_refresh_s: float = 300.0
    # A token with an unknown `kid` refetches the JWKS at most once per this many seconds, so tokens
    # with random key ids cannot make the gateway hammer the issuer.
    jwks_min_refetch_s: float = 30.0
    # Seconds one JWKS fetch may take (connect and read).
    jwks_timeout_s: float = 5.0
    team_claim: str = "team"
    # The claim naming the token's user in the store; null: tokens are not matched to stored users.
    user_claim: str | None = "sub"
    # A claim holding the models the token may use (a list, or one space-separated string).
    models_claim: str | None = None
    required_claims: list[str] = msgspec.field(default_factory=lambda: ["sub"])
    # Absent: a token whose team or user does not resolve is refused. Set: what such a token gets.
    unscoped: UnscopedTokens | None = None
    # Console sign-in with the issuer (OIDC authorization code + PKCE); absent: keys only.
    console: ConsoleSignIn | None = None


def load_public_key(pem: str) -> PublicKey:
    """The public key in a PEM public key or certificate.

    Raises ValueError when it is neither, or a key type no JWT algorithm uses (DSA, DH, X25519).
    """
    data = pem.strip().encode("ascii", "replace")
    if b"PRIVATE KEY" in data:
        raise ValueError("it is a private key; give the issuer's public key")
    key: object
    if data.startswith(b"-----BEGIN CERTIFICATE-----"):
        key = x509.load_pem_x509_certificate(data).public_key()
    else:
        key = load_pem_public_key(data)
    if not isinstance(key, PublicKey):
        raise ValueError(f"no JWT algorithm uses a {type(key).__name__}")
    return key


def validate_jwt_config(
    config: JwtConfig, path: str, is_model: Callable[[str], bool] = lambda name: True
) -> list[str]:
    """Every error in `config` as `path.field: reason` (empty when valid); `is_model` tells a
    configured model name (for the models `unscoped` allows)."""
    errors: list[str] = []
    if not config.issuer:
        errors.append(f"{path}.issuer: must not be empty")
    audiences = [config.audience] if isinstance(config.audience, str) else config.audience
    if not audiences:
        errors.append(f"{path}.audience: must name at least one audience")
    errors.extend(f"{path}.audience: must not be empty" for audience in audiences if not audience)

    if config.console is not None:
        if not config.console.client_id or config.console.client_id not in audiences:
            errors.append(f"{path}.console.client_id: must be set and listed in {path}.audience")
        if "openid" not in config.console.scopes:
            errors.append(f"{path}.console.scopes: must include openid")
    if (config.jwks_url is None) == (config.public_key_pem is None):
        errors.append(f"{path}: set exactly one of jwks_url and public_key_pem")
    if config.jwks_url is not None:
        errors.extend(_jwks_url(config.jwks_url, f"{path}.jwks_url"))
    key: PublicKey | None = None
    if config.public_key_pem is not None:
        try:
            key = load_public_key(config.public_key_pem)
        except (ValueError, UnsupportedAlgorithm) as exc:
            # cryptography's messages describe the format, never the key's bytes.
            errors.append(f"{path}.public_key_pem: not a PEM public key or certificate ({exc})")

    if not config.algorithms:
        errors.append(f"{path}.algorithms: must name at least one algorithm")
    for i, alg in enumerate(config.algorithms):
        if alg.lower() == "none":
            errors.append(f"{path}.algorithms[{i}]: 'none' (unsigned tokens) is never accepted")
        elif alg.upper().startswith("HS"):
            errors.append(
                f"{path}.algorithms[{i}]: '{alg}' is symmetric; tokens are verified with the issuer's "
                "public key, which must never serve as an HMAC secret"
            )
        elif alg not in ALGORITHM_KEY_TYPES:
            errors.append(
                f"{path}.algorithms[{i}]: unknown algorithm '{alg}' (one of {', '.join(ALGORITHM_KEY_TYPES)})"
            )
    fitting = [alg for alg in config.algorithms if isinstance(key, ALGORITHM_KEY_TYPES.get(alg, ()))]
    if key is not None and config.algorithms and not fitting:
        errors.append(
            f"{path}.algorithms: none of them can verify with public_key_pem's {_key_kind(key)} key"
        )

    if not config.leeway_s >= 0:
        errors.append(f"{path}.leeway_s: must be 0 or more")
    if not config.jwks_refresh_s >= 1:
        errors.append(f"{path}.jwks_refresh_s: must be at least 1")
    if not config.jwks_min_refetch_s >= 0:
        errors.append(f"{path}.jwks_min_refetch_s: must be 0 or more")
    if not config.jwks_timeout_s > 0:
        errors.append(f"{path}.jwks_timeout_s: must be greater than 0")
    errors.extend(
        f"{path}.{name}: must not be empty"
        for name in ("team_claim", "user_claim", "models_claim")
        if getattr(config, name) == ""
    )
    errors.extend(
        f"{path}.required_claims[{i}]: must not be empty"
        for i, claim in enumerate(config.required_claims)
        if not claim
    )
    if config.unscoped is not None:
        errors.extend(_unscoped(config.unscoped, f"{path}.unscoped", is_model))
    return errors


def _unscoped(unscoped: UnscopedTokens, path: str, is_model: Callable[[str], bool]) -> list[str]:
    errors = [f"{path}.models: must name at least one model"] if not unscoped.models else []
    errors.extend(
        f"{path}.models[{i}]: unknown model '{name}'"
        for i, name in enumerate(unscoped.models)
        if not is_model(name)
    )
    errors.extend(
        f"{path}.{field}: must be 0 or more"
        for field in ("rpm", "tpm", "max_parallel", "budget_usd")
        if (value := getattr(unscoped, field)) is not None and not value >= 0
    )
    return errors


def _key_kind(key: PublicKey) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC"
    return "EdDSA"


def _jwks_url(url: str, path: str) -> list[str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"{path}: not an http(s) URL"]  # the URL is not echoed: it may carry a secret
    try:
        parts.port  # noqa: B018 - raises on an invalid port
    except ValueError:
        return [f"{path}: has an invalid port"]
    return []
