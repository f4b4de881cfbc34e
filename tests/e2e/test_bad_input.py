"""Each documented client error: exact status, OpenAI error shape, stable code, no key echoed."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream
from . import raw_http
from .conftest import make_client, new_request_id
from .gateway import MASTER_KEY, TEAM_KEY, UPSTREAM_KEY, Gateway

BOGUS_KEY = "sk-bogus-e2e-SECRET-5e1d"
CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hi"}]
VALID_FIELDS: dict[str, dict[str, Any]] = {
    CHAT: {"messages": MESSAGES},
    "/v1/completions": {"prompt": "hi"},
    "/v1/embeddings": {"input": "hi"},
}


def _auth(key: str | None = MASTER_KEY) -> list[tuple[str, str]]:
    headers = [("Content-Type", "application/json")]
    if key is not None:
        headers.append(("Authorization", f"Bearer {key}"))
    return headers


def assert_error(resp: raw_http.RawResponse, status: int, code: str | None) -> dict[str, Any]:
    """An OpenAI error object with this status (and code, unless None)."""
    assert resp.status == status, f"expected {status}, got {resp.status}: {resp.body[:300]!r}"
    assert (resp.header("content-type") or "").startswith("application/json")
    obj = resp.json()
    assert isinstance(obj, dict)
    assert set(obj) == {"error"}
    error = obj["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["type"], str)
    assert error["param"] is None or isinstance(error["param"], str)
    if code is not None:
        assert error["code"] == code
    for secret in (MASTER_KEY, TEAM_KEY, BOGUS_KEY, UPSTREAM_KEY):
        assert secret.encode() not in resp.body, "an error message echoed a key"
    return error  # type: ignore[no-any-return]


def post_raw(
    gw: Gateway, body: bytes, key: str | None = MASTER_KEY, path: str = CHAT
) -> raw_http.RawResponse:
    return raw_http.request(gw.port, "POST", path, body, _auth(key))


@pytest.mark.parametrize("path", [CHAT, "/v1/completions", "/v1/embeddings"])
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b'{"model": "gpt-test", ',
        b"{'model': 'gpt-test'}",
        b'{"model": "gpt-test", "messages": [{"role": "user", "content": "x"}], "prompt": "x", "input": "x"}}',
        b'{"model": "gpt-test"} {"model": "gpt-test"}',
        b"\xff\xfe{}",
    ],
    ids=["empty", "text", "truncated", "single-quotes", "trailing-brace", "two-objects", "bad-utf8"],
)
def test_invalid_json(gateway: Gateway, upstream: MockUpstream, path: str, body: bytes) -> None:
    before = len(upstream.requests)
    assert_error(post_raw(gateway, body, path=path), 400, "invalid_json")
    assert len(upstream.requests) == before, "an invalid body must not reach the upstream"


@pytest.mark.parametrize("body", [b"[]", b'["model"]', b"42", b'"gpt-test"', b"null", b"true"])
def test_json_not_an_object(gateway: Gateway, body: bytes) -> None:
    assert_error(post_raw(gateway, body), 400, "invalid_body")


@pytest.mark.parametrize(
    "body",
    [
        {"messages": MESSAGES},
        {"model": None, "messages": MESSAGES},
        {"model": 42, "messages": MESSAGES},
        {"model": ["gpt-test"], "messages": MESSAGES},
        {"model": {"name": "gpt-test"}, "messages": MESSAGES},
        {"model": True, "messages": MESSAGES},
    ],
    ids=["absent", "null", "int", "list", "object", "bool"],
)
def test_missing_or_non_string_model(gateway: Gateway, body: dict[str, Any]) -> None:
    error = assert_error(post_raw(gateway, json.dumps(body).encode()), 400, "missing_model")
    assert error["param"] in (None, "model")


@pytest.mark.parametrize("stream", ["yes", 1, 0, [], {}, "true"])
def test_bad_stream_type(gateway: Gateway, stream: Any) -> None:
    body = {"model": "gpt-test", "messages": MESSAGES, "stream": stream}
    assert_error(post_raw(gateway, json.dumps(body).encode()), 400, None)


@pytest.mark.parametrize("key", [MASTER_KEY, TEAM_KEY])
@pytest.mark.parametrize("path", [CHAT, "/v1/completions", "/v1/embeddings"])
def test_unknown_model_is_404_whatever_the_key(gateway: Gateway, key: str, path: str) -> None:
    body = {"model": "no-such-model", **VALID_FIELDS[path]}
    assert_error(post_raw(gateway, json.dumps(body).encode(), key, path), 404, "model_not_found")


def test_upstream_model_name_is_not_a_client_model(gateway: Gateway) -> None:
    body = {"model": "upstream-model-1", "messages": MESSAGES}
    assert_error(post_raw(gateway, json.dumps(body).encode()), 404, "model_not_found")


@pytest.mark.parametrize("model", ["gpt-other", "gpt-default-key"])
def test_model_not_allowed_for_key(gateway: Gateway, upstream: MockUpstream, model: str) -> None:
    rid = new_request_id()
    body = json.dumps({"model": model, "messages": MESSAGES}).encode()
    resp = raw_http.request(gateway.port, "POST", CHAT, body, [*_auth(TEAM_KEY), ("x-request-id", rid)])
    assert_error(resp, 403, "model_not_allowed")
    assert not upstream.received(rid)


def test_allowed_model_for_key_works(gateway: Gateway) -> None:
    body = json.dumps({"model": "gpt-test", "messages": MESSAGES}).encode()
    assert post_raw(gateway, body, TEAM_KEY).status == 200


@pytest.mark.parametrize("path", [CHAT, "/v1/completions", "/v1/embeddings"])
def test_missing_key(gateway: Gateway, path: str) -> None:
    body = json.dumps({"model": "gpt-test", **VALID_FIELDS[path]}).encode()
    assert_error(post_raw(gateway, body, None, path), 401, "missing_api_key")


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz"],
    ids=["empty", "bearer-only", "bearer-space", "basic"],
)
def test_malformed_authorization(gateway: Gateway, authorization: str) -> None:
    body = json.dumps({"model": "gpt-test", "messages": MESSAGES}).encode()
    headers = [("Content-Type", "application/json"), ("Authorization", authorization)]
    resp = raw_http.request(gateway.port, "POST", CHAT, body, headers)
    error = assert_error(resp, 401, None)
    assert error["code"] in {"missing_api_key", "invalid_api_key"}


@pytest.mark.parametrize("key", [BOGUS_KEY, MASTER_KEY + "x", MASTER_KEY[:-1], TEAM_KEY.upper()])
def test_unknown_key(gateway: Gateway, key: str) -> None:
    body = json.dumps({"model": "gpt-test", "messages": MESSAGES}).encode()
    resp = post_raw(gateway, body, key)
    assert_error(resp, 401, "invalid_api_key")
    assert key.encode() not in resp.body


def test_unknown_key_sdk(gateway: Gateway) -> None:
    with make_client(gateway, BOGUS_KEY) as c, pytest.raises(openai.AuthenticationError) as info:
        c.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 401
    assert BOGUS_KEY not in str(info.value)


def test_unknown_model_sdk(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "model_not_found"


def test_not_allowed_sdk(gateway: Gateway) -> None:
    with make_client(gateway, TEAM_KEY) as c, pytest.raises(openai.PermissionDeniedError) as info:
        c.chat.completions.create(model="gpt-other", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "model_not_allowed"


def test_body_too_large(gateway: Gateway, upstream: MockUpstream) -> None:
    big = "x" * (1024 * 1024 + 10)  # server.max_body_bytes is 1 MiB in the standard config
    body = json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": big}]}).encode()
    rid = new_request_id()
    resp = raw_http.request(gateway.port, "POST", CHAT, body, [*_auth(), ("x-request-id", rid)], timeout=20)
    assert_error(resp, 413, "body_too_large")
    assert not upstream.received(rid)


def test_body_just_under_limit_is_accepted(gateway: Gateway) -> None:
    envelope = json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": ""}]}).encode()
    filler = "y" * (1024 * 1024 - len(envelope) - 16)
    body = json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": filler}]}).encode()
    assert len(body) <= 1024 * 1024
    assert post_raw(gateway, body).status == 200


def test_body_too_large_chunked(gateway: Gateway) -> None:
    """A chunked body (no Content-Length) over the limit is refused too."""
    payload = json.dumps(
        {"model": "gpt-test", "messages": [{"role": "user", "content": "z" * (2 * 1024 * 1024)}]}
    )
    data = payload.encode()
    chunks = b"".join(
        f"{len(data[i : i + 65536]):x}\r\n".encode() + data[i : i + 65536] + b"\r\n"
        for i in range(0, len(data), 65536)
    )
    headers = [*_auth(), ("Transfer-Encoding", "chunked")]
    raw = raw_http.build_request(
        "POST", CHAT, gateway.port, chunks + b"0\r\n\r\n", headers, content_length=False
    )
    assert_error(raw_http.exchange(gateway.port, raw, timeout=20), 413, "body_too_large")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", CHAT, "POST"),
        ("PUT", CHAT, "POST"),
        ("DELETE", "/v1/completions", "POST"),
        ("GET", "/v1/embeddings", "POST"),
        ("POST", "/v1/models", "GET"),
        ("PATCH", "/v1/models", "GET"),
    ],
)
def test_wrong_method(gateway: Gateway, method: str, path: str, allowed: str) -> None:
    body = json.dumps({"model": "gpt-test"}).encode() if method != "GET" else None
    resp = raw_http.request(gateway.port, method, path, body, _auth())
    assert_error(resp, 405, "method_not_allowed")
    allow = resp.header("allow")
    assert allow is not None, "405 needs an Allow header"
    assert allowed in [m.strip() for m in allow.split(",")]


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/v1",
        "/v1/",
        "/v1/chat",
        "/v2/chat/completions",
        "/v1/chat/completions/extra",
        "/nope",
        "/v1/MODELS",
    ],
)
def test_unknown_path(gateway: Gateway, path: str) -> None:
    assert_error(raw_http.request(gateway.port, "GET", path, None, _auth()), 404, "not_found")
    body = json.dumps({"model": "gpt-test", "messages": MESSAGES}).encode()
    assert_error(raw_http.request(gateway.port, "POST", path, body, _auth()), 404, "not_found")


def test_unknown_path_without_key_is_404_or_401(gateway: Gateway) -> None:
    resp = raw_http.request(gateway.port, "GET", "/definitely/not/here")
    assert resp.status in (401, 404)
    assert_error(resp, resp.status, None)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints_open(gateway: Gateway, path: str) -> None:
    resp = raw_http.request(gateway.port, "GET", path)
    assert resp.status == 200


def test_model_check_precedes_key_scope(gateway: Gateway) -> None:
    """A key that may not use a model gets 403 for a real model and 404 for a made-up one."""
    for model, status in (("gpt-other", 403), ("made-up", 404)):
        body = json.dumps({"model": model, "messages": MESSAGES}).encode()
        assert post_raw(gateway, body, TEAM_KEY).status == status
