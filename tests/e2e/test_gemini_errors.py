"""The Gemini routes' refusals and failures, each in Gemini's error shape
(`{"error": {"code", "message", "status"}}`) with the right status, never a 500: auth, bad input
naming the field, unknown models and methods, upstream errors, broken streams, rate limits."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from google.genai import errors

from ..upstreams.openai_mock import MockUpstream
from .conftest import new_request_id
from .gateway import ALL_KEY, FAST, TEAM_KEY, Gateway, GatewayFactory
from .gemini_client import gemini_post, make_gemini, sse_chunks

GENERATE = "/v1beta/models/gpt-test:generateContent"
STREAM = "/v1beta/models/gpt-test:streamGenerateContent?alt=sse"
HELLO = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


def gemini_error(status: int, body: bytes, code: int, name: str) -> str:
    """Asserts Gemini's error shape with `code` / `name`; returns the message."""
    assert status == code, body
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "status"}
    assert (error["code"], error["status"]) == (code, name)
    message: str = error["message"]
    return message


def test_missing_and_wrong_keys(gateway: Gateway) -> None:
    status, _, body = gemini_post(gateway, GENERATE, HELLO, {"x-goog-api-key": ""})
    gemini_error(status, body, 401, "UNAUTHENTICATED")
    status, _, body = gemini_post(gateway, GENERATE, HELLO, {"x-goog-api-key": "sk-wrong"})
    gemini_error(status, body, 401, "UNAUTHENTICATED")
    status, _, body = gemini_post(gateway, GENERATE + "?key=sk-wrong", HELLO, {"x-goog-api-key": ""})
    gemini_error(status, body, 401, "UNAUTHENTICATED")
    status, _, body = gemini_post(gateway, "/v1beta/models", b"", {"x-goog-api-key": ""}, method="GET")
    gemini_error(status, body, 401, "UNAUTHENTICATED")


def test_sdk_sees_the_status(gateway: Gateway) -> None:
    client = make_gemini(gateway, key="sk-not-a-key")
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model="gpt-test", contents="hi")
    assert raised.value.code == 401
    assert raised.value.status == "UNAUTHENTICATED"
    client.close()


def test_unauthenticated_caller_cannot_make_the_gateway_read_a_body(gateway: Gateway) -> None:
    # A body announced but never sent: refused for its key (401) at once, without waiting for it.
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        head = (
            f"POST {GENERATE}?key=sk-wrong HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            "content-length: 1000000\r\n\r\n"
        )
        sock.sendall(head.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            assert data, "closed without an answer"
            answer += data
    assert answer.startswith(b"HTTP/1.1 401")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contents": []}, "contents"),
        ({"contents": [{"role": "bot", "parts": [{"text": "x"}]}]}, "contents.0.role"),
        ({"contents": [{"parts": [{"text": 5}]}]}, "contents.0.parts.0.text"),
        ({"contents": [{"parts": [{}]}]}, "contents.0.parts.0"),
        ({**HELLO, "generationConfig": {"candidateCount": 9}}, "generationConfig.candidateCount"),
        ({**HELLO, "generationConfig": {"maxOutputTokens": 0}}, "generationConfig.maxOutputTokens"),
        ({**HELLO, "generationConfig": {"maxOutputTokens": 10**12}}, "generationConfig.maxOutputTokens"),
        (
            {**HELLO, "generationConfig": {"responseMimeType": "text/x-enum"}},
            "generationConfig.responseMimeType",
        ),
        ({**HELLO, "generationConfig": {"stopSequences": ["a"] * 6}}, "generationConfig.stopSequences"),
        ({**HELLO, "generationConfig": {"thinkingConfig": {"thinkingLevel": "max"}}}, "thinkingLevel"),
        (
            {**HELLO, "generationConfig": {"responseModalities": ["IMAGE"]}},
            "generationConfig.responseModalities",
        ),
        ({**HELLO, "tools": [{"googleSearch": {}}]}, "tools.0.googleSearch"),
        ({**HELLO, "tools": [{"codeExecution": {}}]}, "tools.0.codeExecution"),
        (
            {**HELLO, "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
            "functionCallingConfig.mode",
        ),
        ({**HELLO, "cachedContent": "cachedContents/abc"}, "cachedContent"),
        (
            {
                "contents": [
                    {"parts": [{"fileData": {"fileUri": "gs://b/x.pdf", "mimeType": "application/pdf"}}]}
                ]
            },
            "contents.0.parts.0.fileData",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "application/pdf", "data": "AAAA"}}]}]},
            "contents.0.parts.0.inlineData.mimeType",
        ),
        (
            {
                "contents": [
                    {"role": "user", "parts": [{"text": "x"}]},
                    {"role": "user", "parts": [{"functionResponse": {"name": "nobody", "response": {}}}]},
                ]
            },
            "contents.1.parts.0.functionResponse",
        ),
        (
            {
                "systemInstruction": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "AA"}}]},
                **HELLO,
            },
            "systemInstruction",
        ),
    ],
)
def test_bad_input_names_the_field(
    gateway: Gateway, upstream: MockUpstream, body: dict[str, Any], field: str
) -> None:
    before = len(upstream.requests)
    status, _, answer = gemini_post(gateway, GENERATE, body)
    message = gemini_error(status, answer, 400, "INVALID_ARGUMENT")
    assert field in message
    assert len(upstream.requests) == before  # refused before any upstream call


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[1, 2]", b'{"contents": [' + b"[" * 5000 + b"]" * 5000 + b"]}"],
    ids=["empty", "text", "array", "deep"],
)
def test_malformed_bodies(gateway: Gateway, raw: bytes) -> None:
    status, _, answer = gemini_post(gateway, GENERATE, raw)
    gemini_error(status, answer, 400, "INVALID_ARGUMENT")


def test_unknown_model_method_and_verb(gateway: Gateway) -> None:
    status, _, body = gemini_post(gateway, "/v1beta/models/no-such-model:generateContent", HELLO)
    message = gemini_error(status, body, 404, "NOT_FOUND")
    assert "no-such-model" in message
    status, _, body = gemini_post(gateway, "/v1beta/models/gpt-test:embedContent", HELLO)
    assert "embedContent" in gemini_error(status, body, 404, "NOT_FOUND")
    status, headers, body = gemini_post(gateway, GENERATE, b"", method="GET")
    gemini_error(status, body, 405, "INVALID_ARGUMENT")
    assert headers["allow"] == "POST"
    status, _, body = gemini_post(gateway, "/v1beta/models/" + "m" * 300 + ":generateContent", HELLO)
    gemini_error(status, body, 400, "INVALID_ARGUMENT")
    status, _, body = gemini_post(gateway, "/v1beta/models/gpt-test:generateContent?" + "a=b&" * 2000, HELLO)
    gemini_error(status, body, 400, "INVALID_ARGUMENT")


def test_team_key_is_refused_another_teams_model(gateway: Gateway) -> None:
    status, _, body = gemini_post(
        gateway, "/v1beta/models/gpt-other:generateContent", HELLO, {"x-goog-api-key": TEAM_KEY}
    )
    assert status in (403, 404)
    gemini_error(status, body, status, "PERMISSION_DENIED" if status == 403 else "NOT_FOUND")


def test_upstream_error_is_relayed_in_gemini_shape(gateway: Gateway) -> None:
    body = {
        **HELLO,
        "mock": {"status": 400, "error": {"message": "bad thing", "type": "invalid_request_error"}},
    }
    status, _, answer = gemini_post(gateway, GENERATE, body)
    assert "bad thing" in gemini_error(status, answer, 400, "INVALID_ARGUMENT")
    body = {
        **HELLO,
        "mock": {"status": 429, "error": {"message": "slow down", "type": "rate_limit_exceeded"}},
    }
    status, _, answer = gemini_post(gateway, GENERATE, body)
    gemini_error(status, answer, 429, "RESOURCE_EXHAUSTED")


@pytest.mark.parametrize(
    "mock",
    [
        {"chunks": 6, "cut_after": 3},
        {"chunks": 6, "error_event_after": 3},
        {"chunks": 4, "bad_json_after": 2},
        {"no_finish": True},
    ],
    ids=["cut", "error_event", "bad_json", "no_finish"],
)
def test_broken_stream_ends_with_an_error_chunk(gateway: Gateway, mock: dict[str, Any]) -> None:
    status, _, body = gemini_post(gateway, STREAM, {**HELLO, "mock": mock})
    assert status == 200
    chunks = sse_chunks(body)
    assert "error" in chunks[-1], chunks
    assert set(chunks[-1]["error"]) == {"code", "message", "status"}
    assert all("error" not in c for c in chunks[:-1])
    # The JSON-array form stays one valid array, its error last.
    status, _, body = gemini_post(gateway, STREAM.split("?")[0], {**HELLO, "mock": mock})
    elements = json.loads(body)
    assert "error" in elements[-1]


def test_rpm_limit_is_a_gemini_429(
    gateway_factory: GatewayFactory, upstream: MockUpstream, tmp_path: Path
) -> None:
    config = {
        "server": {"access_log": True},
        "providers": [{"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up"}],
        "models": [
            {"name": "gpt-test", "deployments": [{"provider": "up", "model": "m1"}], "timeouts": dict(FAST)}
        ],
        "auth": {"keys": [{"key": ALL_KEY, "name": "limited", "rpm": 1}]},
    }
    gw = gateway_factory(config)
    headers = {"x-goog-api-key": ALL_KEY}
    status, _, _ = gemini_post(gw, GENERATE, HELLO, headers)
    assert status == 200
    status, response_headers, body = gemini_post(gw, GENERATE, HELLO, headers)
    gemini_error(status, body, 429, "RESOURCE_EXHAUSTED")
    assert "retry-after" in response_headers
    # countTokens counts against the same limit.
    status, _, body = gemini_post(gw, "/v1beta/models/gpt-test:countTokens", HELLO, headers)
    gemini_error(status, body, 429, "RESOURCE_EXHAUSTED")


def test_stream_request_refused_upstream_gets_a_gemini_error_body(gateway: Gateway) -> None:
    mock = {
        "status": 429,
        "error": {"message": "slow down", "type": "rate_limit_exceeded"},
        "headers": {"Retry-After": "7"},
    }
    status, headers, answer = gemini_post(gateway, STREAM, {**HELLO, "mock": mock})
    assert "slow down" in gemini_error(status, answer, 429, "RESOURCE_EXHAUSTED")
    assert headers["retry-after"] == "7"


def test_count_tokens_of_a_whole_generate_content_request(gateway: Gateway) -> None:
    path = "/v1beta/models/gpt-test:countTokens"
    bare = {"contents": [{"role": "user", "parts": [{"text": "count these words please"}]}]}
    status, _, answer = gemini_post(gateway, path, bare)
    assert status == 200, answer
    plain = json.loads(answer)["totalTokens"]
    wrapped = {
        "generateContentRequest": {
            "model": "models/gpt-test",
            **bare,
            "systemInstruction": {"parts": [{"text": "and a system instruction too"}]},
        }
    }
    status, _, answer = gemini_post(gateway, path, wrapped)
    assert status == 200, answer
    assert json.loads(answer)["totalTokens"] > plain > 0
    status, _, answer = gemini_post(gateway, path, {})
    assert "contents" in gemini_error(status, answer, 400, "INVALID_ARGUMENT")
    wrapped["generateContentRequest"]["tools"] = [{"googleSearch": {}}]
    status, _, answer = gemini_post(gateway, path, wrapped)
    assert "tools.0.googleSearch" in gemini_error(status, answer, 400, "INVALID_ARGUMENT")


def test_history_from_gemini_itself_is_accepted(gateway: Gateway, upstream: MockUpstream) -> None:
    # A conversation begun on Google's API: thought parts, a bare thoughtSignature part, a signed
    # functionCall, and the older `function` role for the responses.
    rid = new_request_id()
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "weather?"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "thinking...", "thought": True},
                    {"thoughtSignature": "c2lnbmF0dXJl"},
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": "c2ln",
                    },
                ],
            },
            {
                "role": "function",
                "parts": [{"functionResponse": {"name": "get_weather", "response": {"t": 21}}}],
            },
        ]
    }
    status, _, answer = gemini_post(gateway, GENERATE, body, {"x-request-id": rid})
    assert status == 200, answer
    messages = upstream.wait_for(rid).body_json["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["id"] == messages[2]["tool_call_id"] == "call_1_0"
