"""Bearer JWTs from an OIDC issuer: signature, `exp`/`nbf`/`iat`/`aud`/`iss` and claims to an identity.

`JwtVerifier.verify` is the whole check. On keys already in memory it never waits: the signature is
verified in place and a verified token's identity is remembered until it expires, so a client that
reuses its token pays for the signature once. The token cache is dropped whenever the issuer's key set
changes, so a removed key stops verifying after the next JWKS refresh.

Every rejection is an AuthenticationFailed whose `code` says which check failed; no message quotes the
token or anything read from it.

Example::

    verifier = JwtVerifier(JwtConfig(issuer="https://idp", audience="gatecore", jwks_url=url))
    await verifier.start()
    if looks_like_jwt(secret):
        identity = await verifier.verify(secret)  # identity.team, identity.user, identity.models
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import jwt
import msgspec
import orjson
from jwt.exceptions import InvalidJTIError, InvalidSubjectError

from gatecore.auth.jwks import JwksCache, VerificationKey
from gatecore.config.jwt import ALGORITHM_KEY_TYPES, JwtConfig, load_public_key
from gatecore.errors import AuthenticationFailed

# Longer tokens are refused before any decoding, so huge headers cannot cost parse time.
MAX_TOKEN_CHARS = 16 * 1024
# Verified tokens remembered (the oldest is dropped first).
TOKEN_CACHE_SIZE = 4096
# A signature segment may be empty so that an unsigned (`alg: none`) token is reported as such.
_JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class JwtIdentity(msgspec.Struct, frozen=True):
    """Who a verified token speaks for. `models` is None when the token does not narrow the models."""

    subject: str | None
    team: str | None
    user: str | None
    models: frozenset[str] | None
    expires_at: int
    """The token's `exp`, in seconds since the epoch."""


def looks_like_jwt(token: str) -> bool:
    """Whether `token` has a JWT's shape (three base64url segments, a JSON header), without parsing it.

    >>> looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"), looks_like_jwt("gk-abc123")
    (True, False)
    """
    return token.startswith("eyJ") and _JWT_SHAPE.fullmatch(token) is not None


def _rejected(code: str, reason: str) -> AuthenticationFailed:
    return AuthenticationFailed(f"Invalid bearer token: {reason}.", code=code)


def _claim_path(name: str) -> tuple[str, tuple[str, ...]]:
    return name, tuple(name.split("."))


def _claim(claims: dict[str, Any], path: tuple[str, tuple[str, ...]]) -> Any:
    """A claim by its exact name, else by a dotted path into nested objects (`realm.roles`)."""
    name, parts = path
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in parts:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _header(token: str) -> dict[str, Any]:
    """The JOSE header of a token of JWT shape. PyJWT reads it again, strictly, when it verifies;
    its own unverified-header read costs as much as the signature check, so it is not used."""
    segment = token[: token.index(".")]
    try:
        header = orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:  # binascii.Error and orjson.JSONDecodeError are ValueErrors
        raise _rejected("malformed_token", "not a well-formed JWT") from None
    if not isinstance(header, dict):
        raise _rejected("malformed_token", "not a well-formed JWT")
    return header


class JwtVerifier:
    """Verifies bearer JWTs against one issuer's public keys (a JWKS URL or a static PEM)."""

    def __init__(self, config: JwtConfig):
        """`config` must have passed `validate_jwt_config`."""
        # Only asymmetric algorithms, whatever the config says: never `none`, never HS*.
        self.algorithms = frozenset(alg for alg in config.algorithms if alg in ALGORITHM_KEY_TYPES)
        self.issuer = config.issuer
        self.audience = config.audience
        self.leeway_s = config.leeway_s
        self._team = _claim_path(config.team_claim)
        self._user = _claim_path(config.user_claim) if config.user_claim is not None else None
        # What the token policy needs of the config: whether users are matched, and what a token
        # whose team or user does not resolve gets (None: a 403).
        self.match_users = config.user_claim is not None
        self.unscoped = config.unscoped
        self._models = _claim_path(config.models_claim) if config.models_claim else None
        self._required = [_claim_path(name) for name in config.required_claims]
        self._static_key: VerificationKey | None = None
        self.jwks: JwksCache | None = None
        if config.public_key_pem is not None:
            self._static_key = VerificationKey(load_public_key(config.public_key_pem), None)
        elif config.jwks_url is not None:
            self.jwks = JwksCache(
                config.jwks_url,
                refresh_s=config.jwks_refresh_s,
                min_refetch_s=config.jwks_min_refetch_s,
                timeout_s=config.jwks_timeout_s,
                on_change=self._forget_verified,
            )
        self._verified: dict[str, JwtIdentity] = {}

    def _forget_verified(self) -> None:
        self._verified = {}

    async def start(self) -> None:
        """Load the JWKS and start its background refresh (nothing to do for a static key)."""
        if self.jwks is not None:
            await self.jwks.start()

    async def close(self) -> None:
        """Stop the background JWKS refresh."""
        if self.jwks is not None:
            await self.jwks.close()

    async def verify(self, token: str) -> JwtIdentity:
        """The identity `token` carries. Raises AuthenticationFailed with the failed check as `code`.

        Waits only when the token names a key id not in memory (one shared, rate-limited JWKS refetch).
        """
        identity = self._verified.get(token)
        if identity is not None:
            if time.time() < identity.expires_at + self.leeway_s:
                return identity
            del self._verified[token]
        if len(token) > MAX_TOKEN_CHARS or not looks_like_jwt(token):
            raise _rejected("malformed_token", "not a well-formed JWT")
        header = _header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise _rejected("algorithm_not_allowed", "its signing algorithm is not allowed")
        if "crit" in header:  # RFC 7515 §4.1.11: extensions the verifier does not know must fail
            raise _rejected(
                "malformed_token", "it names critical header extensions gatecore does not support"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _rejected("malformed_token", "its 'kid' header is not a string")
        key = self._static_key or await self._jwks_key(kid)
        identity = self._verify_signed(token, alg, key)
        if len(self._verified) >= TOKEN_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = identity
        return identity

    async def _jwks_key(self, kid: str | None) -> VerificationKey:
        assert self.jwks is not None
        key = self.jwks.get(kid)
        if key is None:
            key = await self.jwks.refetch_for(kid)
        if key is None:
            if not self.jwks.loaded:
                raise _rejected("signing_keys_unavailable", "the issuer's signing keys could not be loaded")
            raise _rejected("unknown_key_id", "it is signed with a key the issuer does not publish")
        return key

    def _verify_signed(self, token: str, alg: str, key: VerificationKey) -> JwtIdentity:
        if (key.algorithm is not None and key.algorithm != alg) or not isinstance(
            key.key, ALGORITHM_KEY_TYPES[alg]
        ):
            raise _rejected("algorithm_not_allowed", "its signing algorithm does not fit the issuer's key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise _pyjwt_rejection(exc) from None
        for path in self._required:
            if _claim(claims, path) is None:
                raise _rejected("missing_claim", f"the required claim '{path[0]}' is missing")
        return JwtIdentity(
            subject=claims.get("sub"),
            team=self._name_claim(claims, self._team),
            user=self._name_claim(claims, self._user) if self._user is not None else None,
            models=self._models_claim(claims),
            expires_at=int(claims["exp"]),
        )

    @staticmethod
    def _name_claim(claims: dict[str, Any], path: tuple[str, tuple[str, ...]]) -> str | None:
        value = _claim(claims, path)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise _rejected("invalid_claim", f"the claim '{path[0]}' is not a string")

    def _models_claim(self, claims: dict[str, Any]) -> frozenset[str] | None:
        if self._models is None:
            return None
        value = _claim(claims, self._models)
        if value is None:
            return None
        if isinstance(value, str):
            return frozenset(value.split())
        if isinstance(value, list) and all(isinstance(model, str) for model in value):
            return frozenset(value)
        raise _rejected("invalid_claim", f"the claim '{self._models[0]}' is not a list of model names")


def _pyjwt_rejection(exc: jwt.PyJWTError) -> AuthenticationFailed:
    """The rejection for one of PyJWT's errors (subclasses before their bases)."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return _rejected("token_expired", "it has expired")
    if isinstance(exc, jwt.ImmatureSignatureError):
        return _rejected("token_not_yet_valid", "it is not valid yet (nbf or iat is in the future)")
    if isinstance(exc, jwt.InvalidAudienceError):
        return _rejected("invalid_audience", "it is not meant for this audience")
    if isinstance(exc, jwt.InvalidIssuerError):
        return _rejected("invalid_issuer", "it is not from the configured issuer")
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return _rejected("missing_claim", f"the required claim '{exc.claim}' is missing")
    if isinstance(exc, jwt.InvalidSignatureError):
        return _rejected("invalid_signature", "the signature does not verify")
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return _rejected("algorithm_not_allowed", "its signing algorithm is not allowed")
    if isinstance(exc, jwt.InvalidIssuedAtError | InvalidSubjectError | InvalidJTIError):
        return _rejected("invalid_claim", "a registered claim (iat, sub or jti) has the wrong type")
    if isinstance(exc, jwt.InvalidKeyError):
        return _rejected("invalid_signature", "the issuer's key does not fit the token")
    # DecodeError and the rest: bad base64 or JSON, or non-numeric `exp`/`nbf`.
    return _rejected("malformed_token", "not a well-formed JWT")
