"""A loopback OIDC issuer for tests: keys generated locally, a JWKS served over real HTTP, tokens signed.

`SigningKey` is one RSA or EC key pair with a `kid`: it gives its public JWK and PEM and signs tokens
with PyJWT. `JwksServer` serves a JWKS document (RFC 7517) on 127.0.0.1 from a background thread; a
test swaps the published keys (`publish`), counts fetches (`fetches`), slows answers (`delay_s`) or
makes them fail (`fail_status`), or stops the server outright.

Example::

    key = SigningKey.rsa("k1")
    with JwksServer([key]) as issuer:
        config = JwtConfig(issuer=ISSUER, audience="gatecore", jwks_url=issuer.url)
        token = key.sign({"iss": ISSUER, "aud": "gatecore", "sub": "alice", "exp": in_an_hour})
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

JWKS_PATH = "/.well-known/jwks.json"


class SigningKey:
    """A locally generated key pair an issuer signs with, named by `kid`."""

    def __init__(self, kid: str, private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, algorithm: str):
        self.kid = kid
        self.private_key = private_key
        self.algorithm = algorithm

    @classmethod
    def rsa(cls, kid: str, algorithm: str = "RS256") -> SigningKey:
        return cls(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm)

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, ec.generate_private_key(ec.SECP256R1()), "ES256")

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK, with `kid`, `use: sig` and `alg`."""
        public = self.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    @property
    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(
        self, claims: dict[str, Any], *, kid: str | None = "", header: dict[str, Any] | None = None
    ) -> str:
        """A token with `claims`, signed by this key, with `header`'s extra fields.

        `kid=None` leaves the kid out; "" uses this key's.
        """
        fields = dict(header or {})
        if kid is not None:
            fields["kid"] = kid or self.kid
        return jwt.encode(claims, self.private_key, algorithm=self.algorithm, headers=fields)


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 (`url`), run by http.server in a background thread."""

    def __init__(self, keys: list[SigningKey] | None = None):
        self._lock = threading.Lock()
        self._document = b""
        self._fetches = 0
        self.delay_s = 0.0
        """Seconds each answer waits before it is written (to make concurrent fetches overlap)."""
        self.fail_status: int | None = None
        """When set, every fetch is answered with this HTTP status and no JWKS."""
        self.publish(keys or [])
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{JWKS_PATH}"

    @property
    def fetches(self) -> int:
        """JWKS requests answered (or failed on purpose) so far."""
        with self._lock:
            return self._fetches

    def publish(self, keys: list[SigningKey], extra: list[dict[str, Any]] | None = None) -> None:
        """Serve these keys' public JWKs from now on (`extra`: raw JWK entries appended as is)."""
        document = {"keys": [key.public_jwk for key in keys] + (extra or [])}
        with self._lock:
            self._document = json.dumps(document).encode()

    def _answer(self) -> tuple[int, bytes]:
        with self._lock:
            self._fetches += 1
            delay, status, document = self.delay_s, self.fail_status, self._document
        if delay:
            time.sleep(delay)
        if status is not None:
            return status, b'{"error": "unavailable"}'
        return 200, document

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.partition("?")[0] != JWKS_PATH:
                    status, body = 404, b'{"error": "not found"}'
                else:
                    status, body = owner._answer()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving; the port then refuses connections (a later `start()` reuses it)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
