"""A loopback OpenID Connect provider for the console's sign-in tests: discovery, JWKS, an
authorization endpoint that approves at once (as a signed-in user would) and a token endpoint that
checks the PKCE verifier against the challenge before it signs an ID token."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from ..upstreams.jwks_server import SigningKey


class LoopbackIdp:
    """An OIDC provider on 127.0.0.1 (`url` is its issuer); `claims` go into every ID token."""

    def __init__(self, client_id: str, claims: dict[str, Any]):
        self.client_id = client_id
        self.claims = claims
        self.key = SigningKey.rsa("idp-1")
        self.codes: dict[str, dict[str, str]] = {}
        self.redeemed: list[str] = []  # the codes the token endpoint accepted
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> LoopbackIdp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or form.get("client_id") != self.client_id:
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant["challenge"] or form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE or redirect_uri mismatch"}
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 600,
            "nonce": grant["nonce"],
            **self.claims,
        }
        self.redeemed.append(form["code"])
        return 200, {"id_token": self.key.sign(claims), "token_type": "Bearer", "access_token": "unused"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if path == "/.well-known/openid-configuration":
                    return self._send(
                        200,
                        {
                            "issuer": idp.url,
                            "authorization_endpoint": idp.url + "/authorize",
                            "token_endpoint": idp.url + "/token",
                            "jwks_uri": idp.url + "/jwks",
                            "code_challenge_methods_supported": ["S256"],
                        },
                    )
                if path == "/jwks":
                    return self._send(200, {"keys": [idp.key.public_jwk]})
                if path == "/authorize":
                    q = {k: v[-1] for k, v in parse_qs(query).items()}
                    if q.get("code_challenge_method") != "S256" or q.get("client_id") != idp.client_id:
                        return self._send(400, {"error": "invalid_request"})
                    code = secrets.token_urlsafe(16)
                    idp.codes[code] = {
                        "challenge": q["code_challenge"],
                        "nonce": q.get("nonce", ""),
                        "redirect_uri": q["redirect_uri"],
                    }
                    target = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
                    assert urlsplit(target).hostname == "127.0.0.1"
                    return self._send(302, {}, {"Location": target})
                return self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self.path != "/token":
                    return self._send(404, {"error": "not_found"})
                status, body = idp._token(form)
                return self._send(status, body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
