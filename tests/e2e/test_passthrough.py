"""Pass-through: the upstream gets the client's body with only ``model`` replaced (plus
``stream_options.include_usage`` on streams), its own key, and the client's request id; the client gets
the upstream's body with only ``model`` replaced."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream, RecordedRequest
from . import raw_http
from .conftest import new_request_id
from .gateway import (
    ALL_KEY,
    DEFAULT_UPSTREAM_KEY,
    MASTER_KEY,
    TEAM_KEY,
    UPSTREAM_KEY,
    Gateway,
)

EXOTIC_FIELDS: dict[str, Any] = {
    "ignore_eos": True,
    "top_k": 40,
    "min_tokens": 3,
    "repetition_penalty": 1.05,
    "guided_json": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
    "logit_bias": {"50256": -100},
    "temperature": 0.1,
    "seed": 2**62,
    "huge_int": 2**70,
    "tiny": 1e-300,
    "unicode": 'h\u00e9llo \u2603 \U0001f600 \u0000 "quoted" \\ /',
    "nested": {"a": [1, 2.5, {"b": None, "c": [True, False]}], "": "empty key"},
    "stop": ["\n\n", "###"],
    "max_tokens": 16,
}


def _post(
    gw: Gateway, path: str, body: dict[str, Any], key: str = MASTER_KEY
) -> tuple[str, raw_http.RawResponse]:
    rid = new_request_id()
    resp = raw_http.post_json(gw.port, path, body, key, extra_headers={"x-request-id": rid})
    return rid, resp


def _open_stream(gw: Gateway, path: str, body: dict[str, Any]) -> tuple[str, list[Any], raw_http.RawStream]:
    rid = new_request_id()
    headers = {
        "Authorization": f"Bearer {MASTER_KEY}",
        "Content-Type": "application/json",
        "x-request-id": rid,
    }
    with raw_http.RawStream(gw.port, path, json.dumps(body).encode(), headers, timeout=20) as stream:
        assert stream.status == 200, stream.reader.read_to_eof()[:300]
        events = ["[DONE]" if a.data == b"[DONE]" else json.loads(a.data) for a in stream.events()]
    return rid, events, stream


def _with_model(obj: dict[str, Any], model: str) -> dict[str, Any]:
    return {**obj, "model": model}


def _assert_forwarded(sent: RecordedRequest, body: dict[str, Any], upstream_model: str) -> None:
    expected = _with_model(body, upstream_model)
    assert sent.body_json == expected
    assert list(sent.body_json) == list(expected), "key order is kept"


@pytest.mark.parametrize(
    ("path", "base"),
    [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "exotic"}]}),
        ("/v1/completions", {"prompt": "exotic"}),
        ("/v1/embeddings", {"input": ["exotic"]}),
    ],
)
def test_unknown_fields_reach_upstream_unchanged(
    gateway: Gateway, upstream: MockUpstream, path: str, base: dict[str, Any]
) -> None:
    body = {"model": "gpt-test" if "embeddings" not in path else "embed-test", **base, **EXOTIC_FIELDS}
    rid, resp = _post(gateway, path, body)
    assert resp.status == 200, resp.body
    upstream_model = "text-embedding-mock" if "embeddings" in path else "upstream-model-1"
    _assert_forwarded(upstream.wait_for(rid), body, upstream_model)


def test_model_not_first_key(gateway: Gateway, upstream: MockUpstream) -> None:
    body = {"messages": [{"role": "user", "content": "late model"}], "top_k": 1, "model": "gpt-test", "z": 0}
    rid, resp = _post(gateway, "/v1/chat/completions", body)
    assert resp.status == 200, resp.body
    _assert_forwarded(upstream.wait_for(rid), body, "upstream-model-1")


def test_model_lookalikes_not_replaced(gateway: Gateway, upstream: MockUpstream) -> None:
    """Only the top-level ``model`` changes, not nested ones or strings that contain the name."""
    body = {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": '"model": "gpt-test"'}],
        "metadata": {"model": "gpt-test"},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"model": "gpt-test"}}}],
    }
    rid, resp = _post(gateway, "/v1/chat/completions", body)
    assert resp.status == 200, resp.body
    _assert_forwarded(upstream.wait_for(rid), body, "upstream-model-1")


def test_extra_body_via_sdk(client: openai.OpenAI, upstream: MockUpstream) -> None:
    rid = new_request_id()
    extra = {"ignore_eos": True, "top_k": 5, "min_tokens": 2, "guided_json": {"type": "string"}, "best_of": 2}
    client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "sdk extra"}],
        extra_body=extra,
        extra_headers={"x-request-id": rid},
    )
    sent = upstream.wait_for(rid).body_json
    for name, value in extra.items():
        assert sent[name] == value


def test_non_stream_response_unchanged_except_model(gateway: Gateway, upstream: MockUpstream) -> None:
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "echo body"}]}
    rid, resp = _post(gateway, "/v1/chat/completions", body)
    assert resp.status == 200
    assert resp.json() == _with_model(upstream.wait_for(rid).response_json, "gpt-test")


@pytest.mark.parametrize("key", [MASTER_KEY, TEAM_KEY, ALL_KEY])
def test_upstream_gets_provider_key_not_client_key(
    gateway: Gateway, upstream: MockUpstream, key: str
) -> None:
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "auth"}]}
    rid, resp = _post(gateway, "/v1/chat/completions", body, key)
    assert resp.status == 200
    sent = upstream.wait_for(rid)
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    for name, value in sent.headers.items():
        assert key not in value, f"client key leaked to the upstream in header {name}"
    assert key.encode() not in sent.body


def test_provider_key_env_default(gateway: Gateway, upstream: MockUpstream) -> None:
    """``${VAR:-default}`` with VAR unset gives the default."""
    body = {"model": "gpt-default-key", "messages": [{"role": "user", "content": "default key"}]}
    rid, resp = _post(gateway, "/v1/chat/completions", body)
    assert resp.status == 200
    assert upstream.wait_for(rid).headers["authorization"] == f"Bearer {DEFAULT_UPSTREAM_KEY}"


def test_request_id_propagation(gateway: Gateway, upstream: MockUpstream) -> None:
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "rid"}]}
    rid, resp = _post(gateway, "/v1/chat/completions", body)
    assert resp.header("x-request-id") == rid
    assert upstream.wait_for(rid).headers["x-request-id"] == rid

    marker = new_request_id()
    body["messages"] = [{"role": "user", "content": marker}]
    resp = raw_http.post_json(gateway.port, "/v1/chat/completions", body, MASTER_KEY)
    generated = resp.header("x-request-id")
    assert generated
    sent = upstream.find(lambda r: isinstance(r.body_json, dict) and marker in json.dumps(r.body_json))
    assert sent.headers.get("x-request-id") == generated


CHAT_STREAM = {"model": "gpt-test", "messages": [{"role": "user", "content": "usage games"}], "stream": True}
COMPLETION_STREAM = {"model": "gpt-test", "prompt": "usage games", "stream": True}


@pytest.mark.parametrize(
    ("path", "body"), [("/v1/chat/completions", CHAT_STREAM), ("/v1/completions", COMPLETION_STREAM)]
)
@pytest.mark.parametrize(
    "client_options",
    [None, {"include_usage": False}, {"include_usage": False, "continuous_usage_stats": False}],
)
def test_include_usage_added_then_hidden(
    gateway: Gateway,
    upstream: MockUpstream,
    path: str,
    body: dict[str, Any],
    client_options: dict[str, Any] | None,
) -> None:
    client_body = dict(body) if client_options is None else {**body, "stream_options": client_options}
    rid, events, stream = _open_stream(gateway, path, client_body)
    sent = upstream.wait_for(rid)
    expected_options = {**(client_options or {}), "include_usage": True}
    assert sent.body_json["stream_options"] == expected_options
    assert {k: v for k, v in sent.body_json.items() if k != "stream_options"} == {
        k: v for k, v in _with_model(client_body, "upstream-model-1").items() if k != "stream_options"
    }
    mock_events = sent.event_objects()
    assert not mock_events[-1]["choices"], "the mock did send a usage chunk upstream"
    assert events[-1] == "[DONE]"
    assert events[:-1] == [_with_model(e, "gpt-test") for e in mock_events if e["choices"]]
    assert stream.ended_cleanly


@pytest.mark.parametrize(
    ("path", "body"), [("/v1/chat/completions", CHAT_STREAM), ("/v1/completions", COMPLETION_STREAM)]
)
def test_client_include_usage_kept(
    gateway: Gateway, upstream: MockUpstream, path: str, body: dict[str, Any]
) -> None:
    client_body = {**body, "stream_options": {"include_usage": True}}
    rid, events, _ = _open_stream(gateway, path, client_body)
    sent = upstream.wait_for(rid)
    _assert_forwarded(sent, client_body, "upstream-model-1")
    assert events[-1] == "[DONE]"
    assert events[:-1] == [_with_model(e, "gpt-test") for e in sent.event_objects()]
    assert events[-2]["choices"] == []
    assert events[-2]["usage"]["total_tokens"] > 0


def test_non_stream_gets_no_stream_options(gateway: Gateway, upstream: MockUpstream) -> None:
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "plain"}], "stream": False}
    rid, resp = _post(gateway, "/v1/chat/completions", body)
    assert resp.status == 200
    _assert_forwarded(upstream.wait_for(rid), body, "upstream-model-1")
