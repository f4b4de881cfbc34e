"""Console sign-in with the JWT issuer: OpenID Connect's authorization code flow with PKCE (RFC 7636).

`/ui/oidc/start` sends the browser to the issuer's authorization endpoint with a fresh `state`,
`nonce` and S256 code challenge, which it also puts in a short-lived cookie sealed with an HMAC
(SameSite=Lax: the issuer's redirect back is a cross-site navigation). `/ui/oidc/callback` checks the
state against that cookie, redeems the code with the verifier at the token endpoint, verifies the ID
token like any bearer JWT (signature by the issuer's keys, `iss`, `aud` = the client id, `exp`) and
its `nonce`, and opens a session for the token's identity. The issuer's endpoints come from its
discovery document, read once. HTTP to the issuer runs in a thread (urllib), never on the loop.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

import jwt as pyjwt
import orjson

from gatecore.auth.stage import AuthStage
from gatecore.config.jwt import ConsoleSignIn
from gatecore.errors import AuthenticationFailed, StoreUnavailable

COOKIE = "gatecore_oidc"
FLOW_TTL_S = 600
TIMEOUT_S = 5.0
MAX_ANSWER = 256 * 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _http(url: str, form: dict[str, str] | None) -> Any:
    """GET `url` (or POST `form` to it) and decode its JSON answer; runs in a thread."""
    data = urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"Accept": "application/json", "User-Agent": "gatecore"}
    )
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return orjson.loads(response.read(MAX_ANSWER))
    except urllib.error.HTTPError as exc:
        raise AuthenticationFailed(f"The identity provider refused the sign-in ({exc.code}).") from None
    except (OSError, ValueError):
        raise StoreUnavailable("The identity provider could not be reached.") from None


class OidcSignIn:
    """The two steps of the flow for one worker (`auth.jwt.console` set)."""

    def __init__(self, auth: AuthStage, issuer: str, settings: ConsoleSignIn):
        self.auth = auth
        self.issuer = issuer.rstrip("/")
        self.settings = settings
        self._endpoints: dict[str, str] | None = None
        # The flow cookie's seal: a keyed hash of a fixed label under the server's key-hashing secret.
        self._seal = auth.hasher.digest("gatecore console oidc flow")

    async def endpoints(self) -> dict[str, str]:
        if self._endpoints is None:
            found = await asyncio.to_thread(_http, self.issuer + "/.well-known/openid-configuration", None)
            if not isinstance(found, dict) or not all(
                isinstance(found.get(name), str) for name in ("authorization_endpoint", "token_endpoint")
            ):
                raise StoreUnavailable("The identity provider's discovery document names no endpoints.")
            self._endpoints = {name: found[name] for name in ("authorization_endpoint", "token_endpoint")}
        return self._endpoints

    async def start(self, redirect_uri: str) -> tuple[str, str]:
        """(where to send the browser, the flow cookie's value)."""
        state, nonce, verifier = (
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(48),
        )
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(self.settings.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        endpoint = (await self.endpoints())["authorization_endpoint"]
        flow = f"{state}.{nonce}.{verifier}.{int(time.time()) + FLOW_TTL_S}"
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", f"{flow}.{self._mac(flow)}"

    async def finish(self, cookie: str | None, state: str, code: str, redirect_uri: str) -> Any:
        """The verified identity of the ID token the code redeems (401 for any failed check)."""
        parts = (cookie or "").split(".")
        if len(parts) != 5 or not hmac.compare_digest(parts[4], self._mac(".".join(parts[:4]))):
            raise AuthenticationFailed("The sign-in was not started here; start it again.")
        flow_state, nonce, verifier, until = parts[:4]
        if not until.isdigit() or int(until) < time.time() or not hmac.compare_digest(flow_state, state):
            raise AuthenticationFailed("The sign-in expired or does not match; start it again.")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.settings.client_id,
            "code_verifier": verifier,
        }
        if self.settings.client_secret:
            form["client_secret"] = self.settings.client_secret
        answer = await asyncio.to_thread(_http, (await self.endpoints())["token_endpoint"], form)
        token = answer.get("id_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or self.auth.jwt is None:
            raise AuthenticationFailed("The identity provider sent no ID token.")
        identity = await self.auth.jwt.verify(token)  # signature, iss, aud, exp: as any bearer JWT
        claims = pyjwt.decode(token, options={"verify_signature": False})  # verified just above
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
            raise AuthenticationFailed("The ID token is not the answer to this sign-in (nonce).")
        if claims.get("aud") != self.settings.client_id and self.settings.client_id not in (
            claims.get("aud") or []
        ):
            raise AuthenticationFailed("The ID token is for another client.")
        return identity

    def _mac(self, flow: str) -> str:
        return hmac.new(self._seal, flow.encode(), hashlib.sha256).hexdigest()
