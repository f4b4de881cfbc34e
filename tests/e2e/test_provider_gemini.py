"""OpenAI clients served by a Gemini upstream: request, answer, stream and error translation end to
end (openai SDK → gatecore → tests/upstreams/gemini_mock.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from ..upstreams.gemini_mock import API_KEY, GeminiMock
from .conftest import new_request_id
from .gateway import MASTER_KEY, Gateway, GatewayFactory
from .translated import (
    IMAGE_URL,
    PNG_B64,
    WEATHER_TOOLS,
    assert_stream_ended_with_error,
    client_for,
    collect_tool_calls,
    post,
    provider_config,
    raw_stream,
)

SECRETS = (API_KEY, MASTER_KEY)
USER: list[Any] = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def mock() -> Iterator[GeminiMock]:
    with GeminiMock() as upstream:
        yield upstream


@pytest.fixture
def gw(mock: GeminiMock, gateway_factory: GatewayFactory) -> Gateway:
    provider = {"name": "google", "kind": "gemini", "base_url": mock.origin, "api_key": API_KEY}
    return gateway_factory(provider_config(provider, "gem"))


@pytest.fixture
def client(gw: Gateway) -> Iterator[openai.OpenAI]:
    with client_for(gw) as c:
        yield c


def test_text_non_stream(client: openai.OpenAI, mock: GeminiMock) -> None:
    rid = new_request_id()
    resp = client.chat.completions.create(
        model="gem/gemini-mock", messages=USER, extra_headers={"x-request-id": rid}
    )
    assert resp.choices[0].message.content == "mock: hello there"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == "gem/gemini-mock"
    assert resp.usage is not None and (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (2, 3)
    received = mock.wait_for(rid)
    assert received.path == "/v1beta/models/gemini-mock:generateContent"
    assert received.headers["x-goog-api-key"] == API_KEY
    assert "authorization" not in received.headers
    assert received.body_json == {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}


def test_text_stream(client: openai.OpenAI, mock: GeminiMock) -> None:
    rid = new_request_id()
    chunks = list(
        client.chat.completions.create(
            model="gem/gemini-mock",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-request-id": rid},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "mock: hello there"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    received = mock.wait_for(rid)
    assert received.path == "/v1beta/models/gemini-mock:streamGenerateContent"
    assert received.query == "alt=sse"


def test_system_and_multi_turn(client: openai.OpenAI, mock: GeminiMock) -> None:
    rid = new_request_id()
    messages: list[Any] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "second"},
        {"role": "user", "content": [{"type": "text", "text": "third"}]},
    ]
    resp = client.chat.completions.create(
        model="gem/gemini-mock", messages=messages, extra_headers={"x-request-id": rid}
    )
    assert resp.choices[0].message.content == "mock: second third"
    body = mock.wait_for(rid).body_json
    assert body["systemInstruction"] == {"parts": [{"text": "You are terse."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "first"}]},
        {"role": "model", "parts": [{"text": "ok"}]},
        {"role": "user", "parts": [{"text": "second"}, {"text": "third"}]},
    ]


def test_two_tools_streamed_and_results_round_trip(client: openai.OpenAI, mock: GeminiMock) -> None:
    rid = new_request_id()
    chunks = list(
        client.chat.completions.create(
            model="gem/gemini-mock~tools=2",
            messages=[{"role": "user", "content": "weather and time"}],
            tools=WEATHER_TOOLS,
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            stream=True,
            extra_headers={"x-request-id": rid},
        )
    )
    calls = collect_tool_calls(chunks)
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert [json.loads(c["arguments"]) for c in calls] == [
        {"n": 0, "city": "Paris"},
        {"n": 1, "city": "Tokyo"},
    ]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "tool_calls"
    ]
    body = mock.wait_for(rid).body_json
    declaration = body["tools"][0]["functionDeclarations"][0]
    assert declaration["name"] == "get_weather" and declaration["parameters"]["required"] == ["city"]
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    # Send the results back with the ids the gateway gave the calls.
    messages: list[Any] = [
        {"role": "user", "content": "weather and time"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for c in calls
            ],
        },
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "noon"},
    ]
    rid = new_request_id()
    resp = client.chat.completions.create(
        model="gem/gemini-mock", messages=messages, tools=WEATHER_TOOLS, extra_headers={"x-request-id": rid}
    )
    contents = mock.wait_for(rid).body_json["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {"functionCall": {"name": "get_weather", "args": {"n": 0, "city": "Paris"}}},
            {"functionCall": {"name": "get_time", "args": {"n": 1, "city": "Tokyo"}}},
        ],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}},
        ],
    }
    assert resp.choices[0].message.content is not None and resp.choices[0].message.content.startswith(
        "results: "
    )


def test_two_tools_non_stream(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="gem/gemini-mock~tools=2", messages=USER, tools=WEATHER_TOOLS, tool_choice="required"
    )
    assert resp.choices[0].finish_reason == "tool_calls"
    calls = [
        t
        for t in resp.choices[0].message.tool_calls or []
        if isinstance(t, ChatCompletionMessageFunctionToolCall)
    ]
    assert [(t.id, t.function.name) for t in calls] == [("call_0", "get_weather"), ("call_1", "get_time")]


def test_images_inline_and_file_data(client: openai.OpenAI, mock: GeminiMock) -> None:
    rid = new_request_id()
    content: list[Any] = [
        {"type": "text", "text": "what"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": {"url": IMAGE_URL}},
    ]
    client.chat.completions.create(
        model="gem/gemini-mock",
        messages=[{"role": "user", "content": content}],
        extra_headers={"x-request-id": rid},
    )
    parts = mock.wait_for(rid).body_json["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": PNG_B64}}
    assert parts[2] == {"fileData": {"mimeType": "image/png", "fileUri": IMAGE_URL}}


def test_json_schema_and_generation_config(client: openai.OpenAI, mock: GeminiMock) -> None:
    rid = new_request_id()
    schema = {
        "type": "object",
        "properties": {"answer": {"type": ["integer", "null"]}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    resp = client.chat.completions.create(
        model="gem/gemini-mock",
        messages=USER,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "a", "schema": schema, "strict": True},
        },
        temperature=0.2,
        top_p=0.8,
        max_tokens=50,
        stop=["END"],
        seed=9,
        extra_headers={"x-request-id": rid},
    )
    assert json.loads(resp.choices[0].message.content or "") == {"answer": 42}
    config = mock.wait_for(rid).body_json["generationConfig"]
    assert config == {
        "temperature": 0.2,
        "topP": 0.8,
        "seed": 9,
        "maxOutputTokens": 50,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "object",
            "properties": {"answer": {"type": "integer", "nullable": True}},
            "required": ["answer"],
        },
    }


@pytest.mark.parametrize("stream", [False, True])
def test_usage_with_cached_and_thought_tokens(client: openai.OpenAI, stream: bool) -> None:
    kwargs: dict[str, Any] = {"model": "gem/gemini-mock~cache=5~thoughts=7", "messages": USER}
    if stream:
        chunks = list(
            client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs)
        )
        usage = chunks[-1].usage
        reasoning = "".join(
            getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
        )
    else:
        resp = client.chat.completions.create(**kwargs)
        usage = resp.usage
        reasoning = getattr(resp.choices[0].message, "reasoning_content", "")
    assert reasoning == "thinking about it"
    assert usage is not None
    assert usage.prompt_tokens == 2 and usage.completion_tokens == 3 + 7
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 5
    assert (
        usage.completion_tokens_details is not None and usage.completion_tokens_details.reasoning_tokens == 7
    )


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_finish_reasons(client: openai.OpenAI, reason: str, finish: str, stream: bool) -> None:
    kwargs: dict[str, Any] = {"model": f"gem/gemini-mock~reason={reason}", "messages": USER}
    if stream:
        chunks = list(client.chat.completions.create(stream=True, **kwargs))
        got = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    else:
        got = [client.chat.completions.create(**kwargs).choices[0].finish_reason]
    assert got == [finish]


@pytest.mark.parametrize(
    ("status", "otype"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "api_error"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_map_to_openai_shape(
    gw: Gateway, client: openai.OpenAI, status: int, otype: str, stream: bool
) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model=f"gem/gemini-mock~status={status}", messages=USER, stream=stream)
    assert info.value.status_code == status
    resp = post(gw, {"model": f"gem/gemini-mock~status={status}", "messages": USER, "stream": stream})
    error = resp.json()["error"]
    assert error["type"] == otype and error["message"].startswith("mock ")
    for secret in SECRETS:
        assert secret.encode() not in resp.body


@pytest.mark.parametrize(
    "steer",
    [
        "stream_error",
        "badjson=1",
        "no_finish",
        "cut=2",
        "truncate~no_finish",
        "ctype=application/json",
        "ctype=text/html",
    ],
)
def test_malformed_streams_end_with_an_error_event(gw: Gateway, steer: str) -> None:
    result = raw_stream(gw, {"model": f"gem/gemini-mock~{steer}", "messages": USER, "stream": True})
    error = assert_stream_ended_with_error(result, SECRETS)
    if steer == "stream_error":
        assert "overloaded" in error["message"]


@pytest.mark.parametrize(("field", "value"), [("n", 3), ("logprobs", True), ("logit_bias", {"1": 2})])
def test_untranslatable_fields_are_400_naming_them(gw: Gateway, field: str, value: Any) -> None:
    resp = post(gw, {"model": "gem/gemini-mock", "messages": USER, field: value})
    assert resp.status == 400
    assert resp.json()["error"]["param"] == field


def test_tool_result_for_unknown_call_is_400(gw: Gateway) -> None:
    messages = [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "r"}]
    resp = post(gw, {"model": "gem/gemini-mock", "messages": messages})
    assert resp.status == 400 and resp.json()["error"]["param"] == "messages[1].tool_call_id"
