"""OpenAI clients served by an Anthropic Messages upstream (openai SDK → gatecore →
tests/upstreams/anthropic_mock.py): the shared conformance cases through this table, then what only
Anthropic does."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from ...upstreams.anthropic_mock import API_KEY, AnthropicMock
from ...upstreams.mock_server import RecordedRequest
from .. import raw_http
from ..conftest import new_request_id
from ..gateway import MASTER_KEY, GatewayFactory
from . import conformance as cf
from .harness import Setup
from .translated import IMAGE_MESSAGES, IMAGE_URL, PNG_B64, WEATHER_TOOLS, post, provider_config

MODEL = "claude/claude-mock"
USER: list[Any] = [{"role": "user", "content": "hello there"}]
ERRORS = [
    (400, "invalid_request_error", "invalid_request_error"),
    (401, "authentication_error", "authentication_error"),
    (403, "permission_error", "permission_error"),
    (404, "not_found_error", "not_found_error"),
    (413, "request_too_large", "invalid_request_error"),
    (429, "rate_limit_error", "rate_limit_error"),
    (500, "api_error", "api_error"),
    (529, "overloaded_error", "api_error"),
]
TOOL_CALLS: list[Any] = [
    {
        "id": "toolu_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    },
    {"id": "toolu_b", "type": "function", "function": {"name": "get_time", "arguments": '{"city":"Tokyo"}'}},
]


def _error(status: int, etype: str, otype: str) -> dict[str, Any]:
    error = {"type": otype, "message": f"mock {etype} ({status})"}
    return error | {"code": "overloaded"} if status == 529 else error


def _first_tool_is_weather(sent: RecordedRequest) -> None:
    assert sent.body_json["tools"][0] == {
        "name": "get_weather",
        "description": "Weather of a city",
        "input_schema": WEATHER_TOOLS[0]["function"]["parameters"],
    }


SETUP = Setup(
    mock=AnthropicMock,
    providers=lambda mock: [
        {
            "name": "claude",
            "kind": "anthropic",
            "base_url": mock.origin,
            "api_key": API_KEY,
            "default_max_tokens": 333,
        }
    ],
    models={"claude/*": ("claude", "*")},
    secrets=(API_KEY,),
)


SUITE = cf.Suite(
    chat={
        MODEL: cf.Exchange(
            model=MODEL,
            reply="mock: hello there",
            usage=cf.Tokens(prompt=2, completion=3),
            sent=cf.Sent(
                path="/v1/messages",
                headers={"x-api-key": API_KEY, "anthropic-version": "2023-06-01"},
                no_headers=["authorization"],
                body={
                    "model": "claude-mock",
                    "max_tokens": 333,
                },  # the provider's default: the client sent none
                no_body=["stream"],
            ),
        )
    },
    stream={
        MODEL: cf.Exchange(
            model=MODEL, reply="mock: hello there", usage=cf.Tokens(prompt=2, completion=3), sent=cf.Sent()
        )
    },
    finish_reasons={
        reason: cf.Finish(cf.named(f"{MODEL}~reason={reason}"), finish)
        for reason, finish in [
            ("end_turn", "stop"),
            ("max_tokens", "length"),
            ("stop_sequence", "stop"),
            ("tool_use", "tool_calls"),
        ]
    },
    upstream_errors={
        str(status): cf.UpstreamError(
            cf.named(f"{MODEL}~status={status}"), status, _error(status, etype, otype)
        )
        for status, etype, otype in ERRORS
    },
    broken_streams={
        steer: cf.BrokenStream(
            cf.named(f"{MODEL}~{steer}"), "overloaded_error" if steer == "stream_error" else None
        )
        for steer in [
            "stream_error",
            "badjson=3",
            "no_stop",
            "cut=4",
            "truncate~no_stop",
            "ctype=application/json",
            "ctype=text/html",
        ]
    },
    rejected={
        field: cf.Rejected(MODEL, {field: value}, field, named_in_message=True)
        for field, value in [
            ("n", 2),
            ("logprobs", True),
            ("seed", 7),
            ("presence_penalty", 0.5),
            ("logit_bias", {"50256": -100}),
        ]
    }
    | {
        "json-mode-with-tools": cf.Rejected(
            MODEL, {"tools": WEATHER_TOOLS, "response_format": {"type": "json_object"}}, "response_format"
        ),
        "bad-tool-arguments": cf.Rejected(
            MODEL,
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{no"}}
                        ],
                    },
                    {"role": "tool", "tool_call_id": "a", "content": "r"},
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
        ),
        "audio": cf.Rejected(
            MODEL,
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}],
                    }
                ]
            },
            "messages[0].content[0].type",
        ),
    },
    translations={
        "system-and-turns": cf.Translation(
            MODEL,
            {
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "first"},
                    {"role": "assistant", "content": "ok"},
                    {"role": "developer", "content": [{"type": "text", "text": "Be kind."}]},
                    {"role": "user", "content": [{"type": "text", "text": "second"}]},
                ]
            },
            cf.Sent(
                body={
                    "system": "You are terse.\n\nBe kind.",
                    "messages": [
                        {"role": "user", "content": [{"type": "text", "text": "first"}]},
                        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
                        {"role": "user", "content": [{"type": "text", "text": "second"}]},
                    ],
                }
            ),
            reply="mock: second",
        ),
        "tool-results-in-one-user-turn": cf.Translation(
            MODEL,
            {
                "messages": [
                    {"role": "user", "content": "weather?"},
                    {"role": "assistant", "content": None, "tool_calls": TOOL_CALLS},
                    {"role": "tool", "tool_call_id": "toolu_a", "content": "sunny"},
                    {
                        "role": "tool",
                        "tool_call_id": "toolu_b",
                        "content": [{"type": "text", "text": "noon"}],
                    },
                ],
                "tools": WEATHER_TOOLS,
            },
            cf.Sent(
                body={
                    "messages": [
                        {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
                        {
                            "role": "assistant",
                            "content": [
                                {
                                    "type": "tool_use",
                                    "id": "toolu_a",
                                    "name": "get_weather",
                                    "input": {"city": "Paris"},
                                },
                                {
                                    "type": "tool_use",
                                    "id": "toolu_b",
                                    "name": "get_time",
                                    "input": {"city": "Tokyo"},
                                },
                            ],
                        },
                        {
                            "role": "user",
                            "content": [
                                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "sunny"},
                                {
                                    "type": "tool_result",
                                    "tool_use_id": "toolu_b",
                                    "content": [{"type": "text", "text": "noon"}],
                                },
                            ],
                        },
                    ]
                }
            ),
            reply="results: sunny | noon",
        ),
        "images": cf.Translation(
            MODEL,
            {"messages": IMAGE_MESSAGES},
            cf.Sent(
                body={
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {"type": "text", "text": "what is this"},
                                {
                                    "type": "image",
                                    "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
                                },
                                {"type": "image", "source": {"type": "url", "url": IMAGE_URL}},
                            ],
                        }
                    ]
                }
            ),
        ),
        "sampling": cf.Translation(
            MODEL,
            {
                "messages": USER,
                "stop": ["END", "STOP"],
                "max_completion_tokens": 77,
                "temperature": 0.3,
                "top_p": 0.9,
                "user": "user-7",
            },
            cf.Sent(
                body={
                    "stop_sequences": ["END", "STOP"],
                    "max_tokens": 77,
                    "temperature": 0.3,
                    "top_p": 0.9,
                    "metadata": {"user_id": "user-7"},
                }
            ),
        ),
        "one-stop-and-max-tokens": cf.Translation(
            MODEL,
            {"messages": USER, "stop": "X", "max_tokens": 12},
            cf.Sent(body={"stop_sequences": ["X"], "max_tokens": 12}),
        ),
    },
    tool_calls={
        "two-tools": cf.ToolCalls(
            cf.named(f"{MODEL}~tools=2"),
            {
                "messages": [{"role": "user", "content": "weather and time in two cities"}],
                "tools": WEATHER_TOOLS,
                "tool_choice": "required",
            },
            [
                ("toolu_00", "get_weather", {"n": 0, "city": "Paris"}),
                ("toolu_01", "get_time", {"n": 1, "city": "Tokyo"}),
            ],
            cf.Sent(
                body={"tool_choice": {"type": "any"}},
                check=_first_tool_is_weather,
            ),
        )
    },
)
globals().update(SUITE.tests())


def test_two_tools_non_stream(client: openai.OpenAI, mock: AnthropicMock) -> None:
    rid = new_request_id()
    resp = client.chat.completions.create(
        extra_headers={"x-request-id": rid},
        model=f"{MODEL}~tools=2",
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


@pytest.mark.parametrize("stream", [False, True])
def test_json_schema_becomes_forced_tool_and_comes_back_as_text(
    client: openai.OpenAI, mock: AnthropicMock, stream: bool
) -> None:
    rid = new_request_id()
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    kwargs: dict[str, Any] = {
        "model": MODEL,
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


@pytest.mark.parametrize("stream", [False, True])
def test_cached_tokens(client: openai.OpenAI, stream: bool) -> None:
    kwargs: dict[str, Any] = {"model": f"{MODEL}~cache=100", "messages": USER}
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


def test_wrong_upstream_key_is_401_without_leaking_it(
    mock: AnthropicMock, gateway_factory: GatewayFactory
) -> None:
    provider = {
        "name": "claude",
        "kind": "anthropic",
        "base_url": mock.origin,
        "api_key": "sk-ant-wrong-key-123",
    }
    gw = gateway_factory(provider_config(provider, "claude"))
    resp = post(gw, {"model": MODEL, "messages": USER})
    assert resp.status == 401
    assert resp.json()["error"]["type"] == "authentication_error"
    assert b"sk-ant-wrong-key-123" not in resp.body


def test_embeddings_endpoint_is_400_naming_it(target: cf.Target) -> None:
    resp = raw_http.post_json(target.gw.port, "/v1/embeddings", {"model": MODEL, "input": "x"}, MASTER_KEY)
    assert resp.status == 400
    assert "embeddings" in resp.json()["error"]["message"]


def test_reasoning_effort_becomes_extended_thinking(client: openai.OpenAI, mock: AnthropicMock) -> None:
    """An OpenAI client's (or the Gemini route's) reasoning effort is Anthropic's thinking budget."""
    rid = new_request_id()
    resp = client.chat.completions.create(
        model=MODEL,
        messages=USER,
        reasoning_effort="medium",
        max_tokens=2000,
        extra_headers={"x-request-id": rid},
    )
    assert resp.choices[0].finish_reason == "stop"
    assert mock.wait_for(rid).body_json["thinking"] == {"type": "enabled", "budget_tokens": 1999}
    rid = new_request_id()
    client.chat.completions.create(
        model=MODEL,
        messages=USER,
        reasoning_effort="high",
        max_tokens=20000,
        extra_headers={"x-request-id": rid},
    )
    assert mock.wait_for(rid).body_json["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=USER, extra_body={"reasoning_effort": "extreme"})
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "reasoning_effort"


@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": 0.2, "reasoning_effort": "high"},
        {"max_tokens": 1024, "reasoning_effort": "high"},
        {"reasoning_effort": "none"},
        {"tool_loop": True, "reasoning_effort": "low"},
    ],
    ids=["temperature", "small-max-tokens", "none", "unsigned-tool-loop"],
)
def test_reasoning_effort_the_request_cannot_carry_is_dropped(
    client: openai.OpenAI, mock: AnthropicMock, fields: dict[str, Any]
) -> None:
    """Anthropic refuses thinking beside a set temperature, within 1024 tokens, or in a tool loop whose
    assistant turn has no signed thinking (the mock refuses that too): the hint is dropped, the request
    served."""
    rid = new_request_id()
    kwargs = dict(fields)
    messages: list[Any] = list(USER)
    if kwargs.pop("tool_loop", False):
        call = {"id": "toolu_x", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "toolu_x", "content": "sunny"},
        ]
        kwargs["tools"] = WEATHER_TOOLS
    resp = client.chat.completions.create(
        model=MODEL, messages=messages, extra_headers={"x-request-id": rid}, **kwargs
    )
    assert resp.choices[0].message is not None
    assert "thinking" not in mock.wait_for(rid).body_json
