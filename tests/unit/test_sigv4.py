"""SigV4 against AWS's published signing test suite (aws-sig-v4-test-suite, 2015-08-30 vectors)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gatecore.providers.sigv4 import SigV4Signer, canonical_query

# The suite's credentials, clock, region and service.
SUITE_NOW = datetime(2015, 8, 30, 12, 36, 0, tzinfo=UTC)
SCOPE = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"


def suite_signer(token: str | None = None) -> SigV4Signer:
    return SigV4Signer(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token, "us-east-1", "service"
    )


@pytest.mark.parametrize(
    ("case", "method", "query", "headers", "body", "signed", "signature"),
    [
        (
            "get-vanilla", "GET", "", [], b"", "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "get-vanilla-query-order-key-case", "GET", "Param2=value2&Param1=value1", [], b"", "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        (
            "post-vanilla", "POST", "", [], b"", "host;x-amz-date",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        ),
        (
            "post-vanilla-query", "POST", "Param1=value1", [], b"", "host;x-amz-date",
            "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
        ),
        (
            "post-x-www-form-urlencoded", "POST", "",
            [("Content-Type", "application/x-www-form-urlencoded")], b"Param1=value1",
            "content-type;host;x-amz-date",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        ),
    ],
)  # fmt: skip
def test_aws_test_suite(
    case: str,
    method: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    signed: str,
    signature: str,
) -> None:
    out = suite_signer().sign(
        method, "/", query, [("Host", "example.amazonaws.com"), *headers], body, SUITE_NOW
    )
    assert out == [
        ("x-amz-date", "20150830T123600Z"),
        (
            "authorization",
            f"AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders={signed}, Signature={signature}",
        ),
    ], case


def test_session_token_is_sent_and_signed() -> None:
    out = dict(suite_signer("tok/en+1").sign("POST", "/", "", [("host", "h")], b"", SUITE_NOW))
    assert out["x-amz-security-token"] == "tok/en+1"
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in out["authorization"]
    plain = dict(suite_signer().sign("POST", "/", "", [("host", "h")], b"", SUITE_NOW))
    assert plain["authorization"] != out["authorization"]


def test_signature_depends_on_body_path_and_clock() -> None:
    signer = suite_signer()
    base = signer.sign("POST", "/a", "", [("host", "h")], b"{}", SUITE_NOW)
    assert signer.sign("POST", "/a", "", [("host", "h")], b"{ }", SUITE_NOW) != base
    assert signer.sign("POST", "/b", "", [("host", "h")], b"{}", SUITE_NOW) != base
    later = datetime(2015, 8, 31, 0, 0, 1, tzinfo=UTC)
    assert signer.sign("POST", "/a", "", [("host", "h")], b"{}", later)[0] == (
        "x-amz-date",
        "20150831T000001Z",
    )


def test_canonical_query_encodes_and_sorts() -> None:
    assert canonical_query("b=2&a=x y&a=1&c=") == "a=1&a=x%20y&b=2&c="
    assert canonical_query("") == ""
