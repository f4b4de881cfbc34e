"""The ``x-api-key`` header as the client key: chat, streams, model lists, scopes and wrong keys."""

from __future__ import annotations

import json

import pytest

from ...upstreams.openai_mock import MockUpstream
from .. import raw_http
from ..conftest import new_request_id
from ..gateway import MASTER_KEY, TEAM_KEY, TEAM_MODELS, UPSTREAM_KEY, Gateway
from .shared import BOGUS_KEY, CHAT, assert_error, chat_body


def test_x_api_key_chat(gateway: Gateway, upstream: MockUpstream) -> None:
    rid = new_request_id()
    headers = [("x-api-key", MASTER_KEY), ("Content-Type", "application/json"), ("x-request-id", rid)]
    body = json.dumps(chat_body("gpt-test", "via x-api-key")).encode()
    resp = raw_http.request(gateway.port, "POST", CHAT, body, headers)
    assert resp.status == 200, resp.body[:300]
    obj = resp.json()
    assert obj["model"] == "gpt-test"
    assert obj["choices"][0]["message"]["content"] == "mock: via x-api-key"
    sent = upstream.wait_for(rid)
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}", "the provider's key, not the client's"
    assert "x-api-key" not in sent.headers
    assert MASTER_KEY.encode() not in sent.body


def test_x_api_key_stream(gateway: Gateway) -> None:
    rid = new_request_id()
    headers = [("x-api-key", MASTER_KEY), ("Content-Type", "application/json"), ("x-request-id", rid)]
    body = json.dumps(chat_body("gpt-test", "streamed via x-api-key", stream=True)).encode()
    result = raw_http.read_stream(gateway.port, CHAT, body, headers)
    assert result.status == 200
    assert result.ended
    assert result.data[-1] == b"[DONE]"
    text = "".join(json.loads(d)["choices"][0]["delta"].get("content") or "" for d in result.data[:-1])
    assert text == "mock: streamed via x-api-key"


def test_x_api_key_scope_applies(gateway: Gateway) -> None:
    for model, status in (("gpt-test", 200), ("gpt-other", 403), ("no-such-model", 404)):
        headers = [("x-api-key", TEAM_KEY), ("Content-Type", "application/json")]
        resp = raw_http.request(gateway.port, "POST", CHAT, json.dumps(chat_body(model)).encode(), headers)
        assert resp.status == status, (model, resp.body[:300])


def test_x_api_key_models(gateway: Gateway) -> None:
    resp = raw_http.request(gateway.port, "GET", "/v1/models", headers={"x-api-key": TEAM_KEY})
    assert resp.status == 200
    assert {m["id"] for m in resp.json()["data"]} == TEAM_MODELS
    resp = raw_http.request(gateway.port, "GET", "/v1/models/gpt-test", headers={"x-api-key": TEAM_KEY})
    assert resp.status == 200
    assert resp.json()["id"] == "gpt-test"


@pytest.mark.parametrize("key", [BOGUS_KEY, MASTER_KEY + "x", TEAM_KEY[:-1]])
def test_wrong_x_api_key_is_401(gateway: Gateway, upstream: MockUpstream, key: str) -> None:
    rid = new_request_id()
    headers = [("x-api-key", key), ("Content-Type", "application/json"), ("x-request-id", rid)]
    resp = raw_http.request(gateway.port, "POST", CHAT, json.dumps(chat_body("gpt-test")).encode(), headers)
    assert_error(resp, 401, "invalid_api_key")
    assert key.encode() not in resp.body
    for path in ("/v1/models", "/v1/models/gpt-test"):
        resp = raw_http.request(gateway.port, "GET", path, headers={"x-api-key": key})
        assert_error(resp, 401, "invalid_api_key")
    assert not upstream.received(rid)
