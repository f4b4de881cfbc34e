"""Errors on gatecore's Anthropic routes: Anthropic's shape, vocabulary and statuses for the gateway's
own errors and the upstream's; broken upstream streams end with an `error` event; fields that cannot
be translated give a 400 naming them; and the exact event sequence of one stream on the wire."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from ..upstreams.openai_mock import MockUpstream
from . import raw_http
from .anthropic_client import anthropic_error, make_anthropic, post_raw, sse_events
from .gateway import MASTER_KEY, TEAM_KEY, Gateway


@pytest.fixture
def claude(gateway: Gateway) -> Iterator[anthropic.Anthropic]:
    with make_anthropic(gateway) as c:
        yield c


def body(model: str = "gpt-test", stream: bool = False, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        doc["stream"] = True
    doc.update(extra)
    return doc


def assert_error(response: tuple[int, dict[str, str], bytes], status: int, type_: str) -> str:
    code, headers, data = response
    assert code == status, data[:300]
    assert headers["content-type"].startswith("application/json")
    error = anthropic_error(data)
    assert error["type"] == type_
    assert MASTER_KEY not in data.decode() and "sk-upstream" not in data.decode()
    message: str = error["message"]
    return message


# -- the gateway's own errors --------------------------------------------------------------------------


def test_missing_key_is_401(gateway: Gateway) -> None:
    message = assert_error(post_raw(gateway, body(), {"x-api-key": ""}), 401, "authentication_error")
    assert "key" in message.lower()


def test_wrong_key_with_the_sdk(gateway: Gateway) -> None:
    with make_anthropic(gateway, key="sk-wrong") as c, pytest.raises(anthropic.AuthenticationError) as info:
        c.messages.create(model="gpt-test", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 401
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["type"] == "authentication_error"


def test_bearer_auth_and_no_version_header(gateway: Gateway) -> None:
    headers = {"x-api-key": "", "anthropic-version": "", "authorization": f"Bearer {MASTER_KEY}"}
    code, response_headers, data = post_raw(gateway, body(), headers)
    assert code == 200, data[:300]
    assert json.loads(data)["type"] == "message"
    assert response_headers["x-request-id"]


def test_unknown_model_is_404(gateway: Gateway) -> None:
    assert_error(post_raw(gateway, body("no-such-model")), 404, "not_found_error")


def test_model_not_allowed_is_403(gateway: Gateway) -> None:
    assert_error(post_raw(gateway, body("gpt-other"), {"x-api-key": TEAM_KEY}), 403, "permission_error")


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b'{"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]}', "max_tokens"),
        (b'{"model": "gpt-test", "max_tokens": 5, "messages": [', "JSON"),
        (b"", "empty"),
        (b"[1, 2]", "object"),
        (b'{"max_tokens": 5, "messages": []}', "model"),
        (b'{"model": "gpt-test", "max_tokens": 5, "messages": "hi"}', "messages"),
        (b'{"model": "gpt-test", "max_tokens": 5, "messages": []}', "messages"),
        (
            b'{"model": "gpt-test", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}',
            "max_tokens",
        ),
    ],
    ids=[
        "no-max-tokens",
        "bad-json",
        "empty",
        "not-object",
        "no-model",
        "messages-type",
        "no-messages",
        "zero",
    ],
)
def test_bad_body_is_400(gateway: Gateway, raw: bytes, needle: str) -> None:
    message = assert_error(post_raw(gateway, raw), 400, "invalid_request_error")
    assert needle in message


def test_too_large_is_413(gateway: Gateway) -> None:
    big = json.dumps(body(messages=[{"role": "user", "content": "x" * (1024 * 1024 + 10)}])).encode()
    headers = [("x-api-key", MASTER_KEY), ("content-type", "application/json")]
    response = raw_http.request(gateway.port, "POST", "/v1/messages", big, headers, timeout=20)
    as_tuple = (response.status, dict(response.headers), response.body)
    assert_error(as_tuple, 413, "request_too_large")


def test_unknown_path_and_wrong_method_are_anthropic_shaped(gateway: Gateway) -> None:
    conn_status, _, data = post_raw(gateway, b"", path="/v1/messages/nope")
    assert conn_status == 404
    assert anthropic_error(data)["type"] == "not_found_error"
    response = raw_http.request(gateway.port, "GET", "/v1/messages", headers=[("x-api-key", MASTER_KEY)])
    assert response.status == 405
    assert response.header("allow") == "POST"
    assert anthropic_error(response.body)["type"] == "invalid_request_error"


# -- upstream errors -----------------------------------------------------------------------------------

UPSTREAM_ERRORS = [
    (400, None, 400, "invalid_request_error"),
    (401, None, 401, "authentication_error"),
    (404, None, 404, "not_found_error"),
    (429, None, 429, "rate_limit_error"),
    (500, None, 500, "api_error"),
    (502, None, 502, "api_error"),
    (504, None, 504, "api_error"),
    (503, {"message": "Engine overloaded", "type": "overloaded_error"}, 529, "overloaded_error"),
    (529, None, 529, "overloaded_error"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("upstream_status", "error", "status", "type_"), UPSTREAM_ERRORS)
def test_upstream_error_maps(
    gateway: Gateway, upstream_status: int, error: Any, status: int, type_: str, stream: bool
) -> None:
    mock: dict[str, Any] = {"status": upstream_status}
    if error is not None:
        mock["error"] = error
    message = assert_error(post_raw(gateway, body(stream=stream, mock=mock)), status, type_)
    assert message == (error["message"] if error else f"mock upstream error {upstream_status}")


def test_upstream_error_with_the_sdk(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as info:
        claude.messages.create(
            model="gpt-test",
            max_tokens=8,
            messages=[{"role": "user", "content": "x"}],
            extra_body={"mock": {"status": 429}},
        )
    assert info.value.status_code == 429


def test_upstream_non_json_error(gateway: Gateway) -> None:
    mock = {"status": 502, "error": "<html>bad gateway</html>", "content_type": "text/html"}
    assert_error(post_raw(gateway, body(mock=mock)), 502, "api_error")


def test_connection_refused_is_502(gateway: Gateway) -> None:
    assert_error(post_raw(gateway, body("gpt-refused")), 502, "api_error")
    assert_error(post_raw(gateway, body("gpt-refused", stream=True)), 502, "api_error")


def test_upstream_timeout_is_504(gateway: Gateway) -> None:
    assert_error(post_raw(gateway, body(mock={"hang": True})), 504, "api_error")


def test_wrong_content_type_is_502(gateway: Gateway) -> None:
    mock = {"content_type": "text/plain"}  # the SSE events, labelled as plain text
    message = assert_error(post_raw(gateway, body(stream=True, mock=mock)), 502, "api_error")
    assert "chat completion" in message


# -- broken upstream streams ---------------------------------------------------------------------------


def stream_of(gateway: Gateway, mock: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    code, headers, data = post_raw(gateway, body(stream=True, mock=mock))
    assert code == 200, data[:300]
    assert headers["content-type"].startswith("text/event-stream")
    return sse_events(data)


BROKEN_STREAMS = [
    ({"cut_after": 3}, "closed the connection"),  # the connection reset mid-stream
    ({"bad_json_after": 2}, "not valid JSON"),
    ({"no_finish": True, "no_done": True}, "before the model finished"),  # a clean EOF, too early
    ({"idle_after": 2, "idle_ms": 1500}, "timed out"),
    ({"chunks": 0, "no_finish": True, "no_done": True, "all_at_once": True}, "before the model finished"),
]


@pytest.mark.parametrize(
    ("mock", "needle"), BROKEN_STREAMS, ids=["cut", "bad-json", "early-eof", "idle", "whole"]
)
def test_broken_stream_ends_with_error_event(gateway: Gateway, mock: dict[str, Any], needle: str) -> None:
    events = stream_of(gateway, mock)
    names = [name for name, _ in events]
    assert names[0] == "message_start"
    assert names[-1] == "error", names
    assert "message_stop" not in names
    error = events[-1][1]
    assert error["type"] == "error"
    assert error["error"]["type"] == "api_error"
    assert needle in error["error"]["message"]


def test_upstream_error_event_mid_stream(gateway: Gateway) -> None:
    error = {"message": "Rate limit reached mid-stream", "type": "requests", "code": "rate_limit_exceeded"}
    events = stream_of(gateway, {"error_event_after": 3, "error": error})
    assert [name for name, _ in events][-1] == "error"
    assert events[-1][1] == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Rate limit reached mid-stream"},
    }


def test_broken_stream_with_the_sdk(claude: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        claude.messages.stream(
            model="gpt-test",
            max_tokens=8,
            messages=[{"role": "user", "content": "x"}],
            extra_body={"mock": {"bad_json_after": 2}},
        ) as stream,
    ):
        stream.get_final_message()
    assert "not valid JSON" in str(info.value)


# -- what cannot be translated -------------------------------------------------------------------------

PDF = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
UNTRANSLATABLE = [
    ({"messages": [{"role": "user", "content": [PDF]}]}, "messages.0.content.0.type"),
    (
        {
            "messages": [
                {"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f1"}}]}
            ]
        },
        "messages.0.content.0.source.type",
    ),
    (
        {"messages": [{"role": "assistant", "content": [{"type": "redacted_thinking", "data": "abc"}]}]},
        "messages.0.content.0.type",
    ),
    (
        {
            "messages": [
                {"role": "user", "content": [{"type": "tool_use", "id": "x", "name": "f", "input": {}}]}
            ]
        },
        "messages.0.content.0",
    ),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
    (
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "system", "content": [{"type": "tool_use", "id": "x", "name": "f", "input": {}}]},
            ]
        },
        "messages.1.content.0",
    ),
    ({"output_config": {"effort": "extreme"}}, "output_config.effort"),
    ({"output_config": {"format": {"type": "regex", "pattern": "a+"}}}, "output_config.format"),
    ({"output_config": {"task_budget": 10}}, "output_config"),
    ({"context_management": {"edits": [{"type": ""}]}}, "context_management.edits.0.type"),
    ({"context_management": {"edits": "all"}}, "context_management.edits"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0.type"),
    ({"tools": [{"name": "f"}]}, "tools.0.input_schema"),
    ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
    ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
    ({"thinking": {"type": "deep"}}, "thinking.type"),
    ({"mcp_servers": [{"type": "url", "url": "https://mcp.example.com", "name": "m"}]}, "mcp_servers"),
    ({"container": "container_1"}, "container"),
]


@pytest.mark.parametrize(("extra", "field"), UNTRANSLATABLE, ids=[u[1] for u in UNTRANSLATABLE])
def test_untranslatable_field_is_400_naming_it(
    gateway: Gateway, upstream: MockUpstream, extra: dict[str, Any], field: str
) -> None:
    before = len(upstream.requests)
    message = assert_error(post_raw(gateway, body(**extra)), 400, "invalid_request_error")
    assert message.startswith(field + ":"), message
    assert len(upstream.requests) == before
    # count_tokens refuses the same requests the same way.
    count_body = {k: v for k, v in body(**extra).items() if k != "max_tokens"}
    message = assert_error(
        post_raw(gateway, count_body, path="/v1/messages/count_tokens"), 400, "invalid_request_error"
    )
    assert message.startswith(field + ":"), message


# -- the exact events on the wire ----------------------------------------------------------------------


def test_exact_sse_sequence(gateway: Gateway) -> None:
    calls = [
        {"id": "call_a", "name": "lookup", "arguments": '{"q": "x"}'},
        {"id": "call_b", "name": "fetch", "arguments": '{"url": "https://e.com"}'},
    ]
    mock = {"content": "Hi there", "tool_calls": calls}
    code, headers, data = post_raw(gateway, body(stream=True, mock=mock), {"x-request-id": "sse-exact-1"})
    assert code == 200
    assert headers["content-type"] == "text/event-stream"
    assert headers["x-request-id"] == "sse-exact-1"
    events = sse_events(data)
    for name, payload in events:
        assert payload["type"] == name
    names = [name for name, _ in events]
    text_deltas = names.count("content_block_delta") - sum(
        1 for _, p in events if p.get("delta", {}).get("type") == "input_json_delta"
    )
    assert names == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * text_deltas,
        "content_block_stop",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_")
    assert (start["type"], start["role"], start["model"], start["content"]) == (
        "message",
        "assistant",
        "gpt-test",
        [],
    )
    assert start["stop_reason"] is None and start["stop_sequence"] is None
    assert start["usage"] == {"input_tokens": 0, "output_tokens": 0}
    blocks = [p for n, p in events if n == "content_block_start"]
    assert blocks == [
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "call_a", "name": "lookup", "input": {}},
        },
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "call_b", "name": "fetch", "input": {}},
        },
    ]
    deltas = [p for n, p in events if n == "content_block_delta"]
    assert "".join(d["delta"]["text"] for d in deltas if d["index"] == 0) == "Hi there"
    assert all(d["delta"]["type"] == "text_delta" for d in deltas if d["index"] == 0)
    for index, call in ((1, calls[0]), (2, calls[1])):
        fragments = [d["delta"] for d in deltas if d["index"] == index]
        assert all(f["type"] == "input_json_delta" for f in fragments)
        assert "".join(f["partial_json"] for f in fragments) == call["arguments"]
    stops = [p for n, p in events if n == "content_block_stop"]
    assert stops == [{"type": "content_block_stop", "index": i} for i in range(3)]
    final = events[-2][1]
    assert final["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert final["usage"]["output_tokens"] > 0
    assert final["usage"]["input_tokens"] > 0
    assert final["usage"]["cache_read_input_tokens"] == 0
    assert events[-1][1] == {"type": "message_stop"}
