"""The access log: one JSON line per request, usage from the upstream or counted, never a secret."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ..upstreams.openai_mock import MockUpstream
from . import raw_http
from .conftest import new_request_id
from .gateway import ALL_KEY, DEFAULT_UPSTREAM_KEY, MASTER_KEY, TEAM_KEY, UPSTREAM_KEY, Gateway

REQUIRED_FIELDS = {
    "request_id",
    "model",
    "deployment",
    "status",
    "input_tokens",
    "output_tokens",
    "usage_source",
    "streamed",
    "latency_ms",
    "overhead_ms",
}
BOGUS_KEY = "sk-bogus-usage-e2e-SECRET-77aa"


def _chat(gw: Gateway, content: str, key: str = MASTER_KEY, **extra: Any) -> tuple[str, raw_http.RawResponse]:
    rid = new_request_id()
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": content}], **extra}
    resp = raw_http.post_json(gw.port, "/v1/chat/completions", body, key, extra_headers={"x-request-id": rid})
    return rid, resp


def _stream(gw: Gateway, body: dict[str, Any], path: str = "/v1/chat/completions") -> tuple[str, list[bytes]]:
    rid = new_request_id()
    headers = {
        "Authorization": f"Bearer {MASTER_KEY}",
        "Content-Type": "application/json",
        "x-request-id": rid,
    }
    result = raw_http.read_stream(gw.port, path, json.dumps(body).encode(), headers, timeout=8)
    assert result.status == 200
    return rid, result.data


def _assert_entry_shape(entry: dict[str, Any]) -> None:
    missing = REQUIRED_FIELDS - set(entry)
    assert not missing, f"access-log line lacks {sorted(missing)}: {entry}"
    assert isinstance(entry["status"], int)
    assert isinstance(entry["streamed"], bool)
    assert entry["usage_source"] in {"upstream", "counted"} or entry["status"] != 200
    for name in ("latency_ms", "overhead_ms"):
        assert isinstance(entry[name], int | float)
        assert entry[name] >= 0
    assert entry["overhead_ms"] <= entry["latency_ms"] + 1


def test_non_stream_usage_from_upstream(gateway: Gateway, upstream: MockUpstream) -> None:
    rid, resp = _chat(gateway, "usage from upstream please")
    assert resp.status == 200
    usage = upstream.wait_for(rid).response_json["usage"]
    entry = gateway.wait_access_log(rid)
    _assert_entry_shape(entry)
    assert entry["model"] == "gpt-test"
    assert "upstream-model-1" in str(entry["deployment"])
    assert entry["status"] == 200
    assert entry["streamed"] is False
    assert entry["usage_source"] == "upstream"
    assert entry["input_tokens"] == usage["prompt_tokens"]
    assert entry["output_tokens"] == usage["completion_tokens"]


@pytest.mark.parametrize("client_usage", [False, True])
def test_stream_usage_from_upstream(gateway: Gateway, upstream: MockUpstream, client_usage: bool) -> None:
    body: dict[str, Any] = {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "a b c d"}],
        "stream": True,
    }
    if client_usage:
        body["stream_options"] = {"include_usage": True}
    rid, _ = _stream(gateway, body)
    usage = upstream.wait_for(rid).event_objects()[-1]["usage"]
    entry = gateway.wait_access_log(rid)
    _assert_entry_shape(entry)
    assert entry["streamed"] is True
    assert entry["usage_source"] == "upstream"
    assert entry["input_tokens"] == usage["prompt_tokens"]
    assert entry["output_tokens"] == usage["completion_tokens"]
    assert entry["status"] == 200


def test_completion_stream_usage(gateway: Gateway, upstream: MockUpstream) -> None:
    rid, _ = _stream(
        gateway, {"model": "gpt-test", "prompt": "one two three", "stream": True}, "/v1/completions"
    )
    usage = upstream.wait_for(rid).event_objects()[-1]["usage"]
    entry = gateway.wait_access_log(rid)
    assert entry["usage_source"] == "upstream"
    assert entry["output_tokens"] == usage["completion_tokens"]


def test_embeddings_usage(gateway: Gateway, upstream: MockUpstream) -> None:
    rid = new_request_id()
    body = {"model": "embed-test", "input": ["alpha beta", "gamma"], "encoding_format": "float"}
    resp = raw_http.post_json(
        gateway.port, "/v1/embeddings", body, MASTER_KEY, extra_headers={"x-request-id": rid}
    )
    assert resp.status == 200
    entry = gateway.wait_access_log(rid)
    _assert_entry_shape(entry)
    assert entry["model"] == "embed-test"
    assert entry["input_tokens"] == upstream.wait_for(rid).response_json["usage"]["prompt_tokens"]
    assert entry["output_tokens"] == 0


def test_non_stream_counted_when_upstream_sends_no_usage(gateway: Gateway) -> None:
    rid, resp = _chat(gateway, "please count these words yourself", mock={"no_usage": True})
    assert resp.status == 200
    assert "usage" not in resp.json()
    entry = gateway.wait_access_log(rid)
    _assert_entry_shape(entry)
    assert entry["usage_source"] == "counted"
    # "please count these words yourself": 5 words; the reply "mock: please count ..." 6 words.
    assert 3 <= entry["input_tokens"] <= 40
    assert 4 <= entry["output_tokens"] <= 30


@pytest.mark.parametrize("client_usage", [False, True])
def test_stream_counted_when_upstream_sends_no_usage(gateway: Gateway, client_usage: bool) -> None:
    body: dict[str, Any] = {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "count the stream"}],
        "stream": True,
        "mock": {"no_usage": True, "chunks": 10},
    }
    if client_usage:
        body["stream_options"] = {"include_usage": True}
    rid, events = _stream(gateway, body)
    assert events[-1] == b"[DONE]"
    entry = gateway.wait_access_log(rid)
    _assert_entry_shape(entry)
    assert entry["streamed"] is True
    assert entry["usage_source"] == "counted"
    assert entry["input_tokens"] > 0
    # Ten deltas "tok0 " .. "tok9 ": between 10 and ~40 tokens with any BPE tokenizer.
    assert 10 <= entry["output_tokens"] <= 40


def test_cut_stream_is_accounted(gateway: Gateway) -> None:
    body = {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "cut"}],
        "stream": True,
        "mock": {"cut_after": 5, "chunks": 20},
    }
    rid, events = _stream(gateway, body)
    assert b"upstream_stream_error" in events[-1]
    entry = gateway.wait_access_log(rid)
    assert entry["streamed"] is True
    assert entry["output_tokens"] > 0, "what was sent before the cut is accounted"


@pytest.mark.parametrize(
    ("body", "key", "status"),
    [
        ({"model": "no-such-model", "messages": []}, MASTER_KEY, 404),
        ({"model": "gpt-other", "messages": []}, TEAM_KEY, 403),
        ({"model": "gpt-test", "messages": []}, BOGUS_KEY, 401),
        ({"model": "gpt-refused", "messages": [{"role": "user", "content": "x"}]}, ALL_KEY, 502),
    ],
)
def test_failed_requests_are_logged(gateway: Gateway, body: dict[str, Any], key: str, status: int) -> None:
    rid = new_request_id()
    resp = raw_http.post_json(
        gateway.port, "/v1/chat/completions", body, key, extra_headers={"x-request-id": rid}
    )
    assert resp.status == status
    entry = gateway.wait_access_log(rid)
    assert entry["status"] == status


def test_one_line_per_request(gateway: Gateway) -> None:
    rids = [_chat(gateway, f"line {i}")[0] for i in range(10)]
    for rid in rids:
        gateway.wait_access_log(rid)
    counts = [sum(1 for e in gateway.access_log() if e.get("request_id") == rid) for rid in rids]
    assert counts == [1] * 10


def test_no_secrets_in_logs(gateway: Gateway) -> None:
    """Runs last in this module: by then the log holds the lines of every request above."""
    rid, _ = _chat(gateway, "secret check", TEAM_KEY)
    gateway.wait_access_log(rid)
    output = gateway.output()
    for secret in (MASTER_KEY, TEAM_KEY, ALL_KEY, UPSTREAM_KEY, DEFAULT_UPSTREAM_KEY, BOGUS_KEY):
        assert secret not in output, "a key shows in the server's output"
