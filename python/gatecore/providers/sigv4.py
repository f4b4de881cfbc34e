"""AWS Signature Version 4 for request headers, with hmac and hashlib (no SDK).

The signer is built once per provider from its credentials; per request it hashes the body, builds
the canonical request over the headers it is given and returns the headers to add. The signing key
(four HMACs) is derived once per UTC day.

Example:
    >>> signer = SigV4Signer("AKIDEXAMPLE", "secret", None, "us-east-1", "bedrock")
    >>> headers = signer.sign("POST", "/model/m/converse", "", [("host", "h"), ("content-type", "application/json")], b"{}")
    >>> [name for name, _ in headers]
    ['x-amz-date', 'authorization']
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

ALGORITHM = "AWS4-HMAC-SHA256"


def uri_encode(text: str, safe: str = "") -> str:
    """RFC 3986 encoding as SigV4 wants it: every byte but A-Z a-z 0-9 - _ . ~ (and `safe`)."""
    return quote(text, safe="-_.~" + safe)


def canonical_query(query: str) -> str:
    """The query string with each name and value encoded, sorted by name then value."""
    if not query:
        return ""
    pairs = [(uri_encode(k), uri_encode(v)) for k, v in parse_qsl(query, keep_blank_values=True)]
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


class SigV4Signer:
    """Signs requests for one service, region and set of credentials."""

    __slots__ = ("_day_key", "access_key_id", "region", "secret_access_key", "service", "session_token")

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None,
        region: str,
        service: str,
    ):
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.region = region
        self.service = service
        self._day_key: tuple[str, bytes] = ("", b"")

    def signing_key(self, day: str) -> bytes:
        """The key of one UTC day (`YYYYMMDD`): HMAC chain over day, region, service, aws4_request."""
        cached_day, key = self._day_key
        if cached_day != day:
            key = _hmac(("AWS4" + self.secret_access_key).encode(), day)
            for part in (self.region, self.service, "aws4_request"):
                key = _hmac(key, part)
            self._day_key = (day, key)
        return key

    def sign(
        self,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        now: datetime | None = None,
    ) -> list[tuple[str, str]]:
        """The headers that sign this request: `x-amz-date`, `x-amz-security-token` when there is a
        session token, and `authorization`.

        `path` is the path exactly as it goes on the request line (already percent-encoded); as for
        every service but S3, it is encoded once more for the canonical request. Every header in
        `headers` is signed (it must include `host`).
        """
        moment = now or datetime.now(UTC)
        amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        added = [("x-amz-date", amz_date)]
        if self.session_token:
            added.append(("x-amz-security-token", self.session_token))
        signed: dict[str, str] = {}
        for name, value in [*headers, *added]:
            key = name.lower()
            value = " ".join(value.split())  # trim, collapse inner runs of spaces
            signed[key] = f"{signed[key]},{value}" if key in signed else value
        names = sorted(signed)
        signed_headers = ";".join(names)
        canonical = "\n".join(
            [
                method,
                uri_encode(path, safe="/") or "/",
                canonical_query(query),
                "".join(f"{name}:{signed[name]}\n" for name in names),
                signed_headers,
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self.signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        authorization = (
            f"{ALGORITHM} Credential={self.access_key_id}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        )
        return [*added, ("authorization", authorization)]


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()
