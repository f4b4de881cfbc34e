"""OpenAI clients served by an Anthropic Messages upstream: request, answer and stream translation end
to end (openai SDK → gatecore → tests/upstreams/anthropic_mock.py). Errors and refusals:
test_provider_anthropic_errors.py."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from ..upstreams.anthropic_mock import API_KEY, AnthropicMock
from .anthropic_upstream import (  # noqa: F401 (pytest fixtures: mock, gw, client)
    USER,
    anthropic_gateway_fixture,
    anthropic_mock_fixture,
    openai_client_fixture,
)
from .conftest import new_request_id
from .translated import (
    IMAGE_URL,
    PNG_B64,
    WEATHER_TOOLS,
    collect_tool_calls,
)


def test_text_non_stream(client: openai.OpenAI, mock: AnthropicMock) -> None:
    rid = new_request_id()
    resp = client.chat.completions.create(
        model="claude/claude-mock", messages=USER, extra_headers={"x-request-id": rid}
    )
    assert resp.choices[0].message.content == "mock: hello there"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == "claude/claude-mock"
    assert resp.usage is not None and resp.usage.prompt_tokens == 2 and resp.usage.completion_tokens == 3
    received = mock.wait_for(rid)
    assert received.path == "/v1/messages"
    assert received.headers["x-api-key"] == API_KEY
    assert received.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in received.headers
    assert received.body_json["model"] == "claude-mock"
    assert received.body_json["max_tokens"] == 333  # the provider's default: the client sent none
    assert "stream" not in received.body_json


def test_text_stream(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="claude/claude-mock", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "mock: hello there"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.model == "claude/claude-mock" for c in chunks)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 2 and chunks[-1].usage.completion_tokens == 3


def test_stream_without_include_usage_hides_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="claude/claude-mock", messages=USER, stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_system_and_multi_turn_arrive_in_anthropic_format(client: openai.OpenAI, mock: AnthropicMock) -> None:
    rid = new_request_id()
    messages: list[Any] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "developer", "content": [{"type": "text", "text": "Be kind."}]},
        {"role": "user", "content": [{"type": "text", "text": "second"}]},
    ]
    resp = client.chat.completions.create(
        model="claude/claude-mock", messages=messages, extra_headers={"x-request-id": rid}
    )
    assert resp.choices[0].message.content == "mock: second"
    body = mock.wait_for(rid).body_json
    assert body["system"] == "You are terse.\n\nBe kind."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "first"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
        {"role": "user", "content": [{"type": "text", "text": "second"}]},
    ]


def test_two_tools_streamed_arrive_complete_and_in_order(client: openai.OpenAI, mock: AnthropicMock) -> None:
    rid = new_request_id()
    chunks = list(
        client.chat.completions.create(
            model="claude/claude-mock~tools=2",
            messages=[{"role": "user", "content": "weather and time in two cities"}],
            tools=WEATHER_TOOLS,
            tool_choice="required",
            stream=True,
            extra_headers={"x-request-id": rid},
        )
    )
    calls = collect_tool_calls(chunks)
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert [c["id"] for c in calls] == ["toolu_00", "toolu_01"]
    assert [json.loads(c["arguments"]) for c in calls] == [
        {"n": 0, "city": "Paris"},
        {"n": 1, "city": "Tokyo"},
    ]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]
    body = mock.wait_for(rid).body_json
    assert body["tool_choice"] == {"type": "any"}
    assert body["tools"][0] == {
        "name": "get_weather",
        "description": "Weather of a city",
        "input_schema": WEATHER_TOOLS[0]["function"]["parameters"],
    }


def test_two_tools_non_stream(client: openai.OpenAI, mock: AnthropicMock) -> None:
    rid = new_request_id()
    resp = client.chat.completions.create(
        extra_headers={"x-request-id": rid},
        model="claude/claude-mock~tools=2",
        messages=[{"role": "user", "content": "go"}],
        tools=WEATHER_TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    message = resp.choices[0].message
    assert resp.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None
    calls = [t for t in message.tool_calls if isinstance(t, ChatCompletionMessageFunctionToolCall)]
    assert [(t.id, t.function.name, json.loads(t.function.arguments)) for t in calls] == [
        ("toolu_00", "get_weather", {"n": 0, "city": "Paris"}),
        ("toolu_01", "get_time", {"n": 1, "city": "Tokyo"}),
    ]
    choice = mock.wait_for(rid).body_json["tool_choice"]
    assert choice == {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}


def test_tool_results_round_trip_merged_into_one_user_turn(
    client: openai.OpenAI, mock: AnthropicMock
) -> None:
    rid = new_request_id()
    messages: list[Any] = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "toolu_b",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"city":"Tokyo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_a", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_b", "content": [{"type": "text", "text": "noon"}]},
    ]
    resp = client.chat.completions.create(
        model="claude/claude-mock",
        messages=messages,
        tools=WEATHER_TOOLS,
        extra_headers={"x-request-id": rid},
    )
    assert resp.choices[0].message.content == "results: sunny | noon"
    sent = mock.wait_for(rid).body_json["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {"city": "Tokyo"}},
        ],
    }
    assert sent[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_b", "content": [{"type": "text", "text": "noon"}]},
        ],
    }


def test_images_base64_and_url(client: openai.OpenAI, mock: AnthropicMock) -> None:
    rid = new_request_id()
    content: list[Any] = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": {"url": IMAGE_URL}},
    ]
    client.chat.completions.create(
        model="claude/claude-mock",
        messages=[{"role": "user", "content": content}],
        extra_headers={"x-request-id": rid},
    )
    blocks = mock.wait_for(rid).body_json["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
    }
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": IMAGE_URL}}


@pytest.mark.parametrize("stream", [False, True])
def test_json_schema_becomes_forced_tool_and_comes_back_as_text(
    client: openai.OpenAI, mock: AnthropicMock, stream: bool
) -> None:
    rid = new_request_id()
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    kwargs: dict[str, Any] = {
        "model": "claude/claude-mock",
        "messages": USER,
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
        "extra_headers": {"x-request-id": rid},
    }
    if stream:
        chunks = list(client.chat.completions.create(stream=True, **kwargs))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    else:
        resp = client.chat.completions.create(**kwargs)
        text = resp.choices[0].message.content or ""
        assert resp.choices[0].message.tool_calls is None
        finish = [resp.choices[0].finish_reason]
    assert json.loads(text) == {"answer": 42}
    assert finish == ["stop"]
    body = mock.wait_for(rid).body_json
    assert body["tools"][0]["input_schema"] == schema
    assert body["tool_choice"] == {"type": "tool", "name": body["tools"][0]["name"]}


def test_sampling_fields_mapped(client: openai.OpenAI, mock: AnthropicMock) -> None:
    rid = new_request_id()
    client.chat.completions.create(
        model="claude/claude-mock",
        messages=USER,
        stop=["END", "STOP"],
        max_completion_tokens=77,
        temperature=0.3,
        top_p=0.9,
        user="user-7",
        extra_headers={"x-request-id": rid},
    )
    body = mock.wait_for(rid).body_json
    assert body["stop_sequences"] == ["END", "STOP"]
    assert body["max_tokens"] == 77
    assert body["temperature"] == 0.3 and body["top_p"] == 0.9
    assert body["metadata"] == {"user_id": "user-7"}
    rid = new_request_id()
    client.chat.completions.create(
        model="claude/claude-mock",
        messages=USER,
        stop="X",
        max_tokens=12,
        extra_headers={"x-request-id": rid},
    )
    body = mock.wait_for(rid).body_json
    assert body["stop_sequences"] == ["X"] and body["max_tokens"] == 12


@pytest.mark.parametrize("stream", [False, True])
def test_cached_tokens(client: openai.OpenAI, stream: bool) -> None:
    kwargs: dict[str, Any] = {"model": "claude/claude-mock~cache=100", "messages": USER}
    if stream:
        chunks = list(
            client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs)
        )
        usage = chunks[-1].usage
    else:
        usage = client.chat.completions.create(**kwargs).usage
    assert usage is not None and usage.prompt_tokens_details is not None
    # Anthropic's input_tokens (2) leaves cache reads (100) and writes (2) out; OpenAI's prompt counts them.
    assert usage.prompt_tokens == 104
    assert usage.prompt_tokens_details.cached_tokens == 100
    assert usage.total_tokens == 107


@pytest.mark.parametrize(
    ("reason", "finish"),
    [("end_turn", "stop"), ("max_tokens", "length"), ("stop_sequence", "stop"), ("tool_use", "tool_calls")],
)
@pytest.mark.parametrize("stream", [False, True])
def test_finish_reasons(client: openai.OpenAI, reason: str, finish: str, stream: bool) -> None:
    kwargs: dict[str, Any] = {"model": f"claude/claude-mock~reason={reason}", "messages": USER}
    if stream:
        chunks = list(client.chat.completions.create(stream=True, **kwargs))
        got = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    else:
        got = [client.chat.completions.create(**kwargs).choices[0].finish_reason]
    assert got == [finish]
