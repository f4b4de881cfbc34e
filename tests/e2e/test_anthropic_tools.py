"""Claude-Code-style tool use through gatecore's Anthropic route, served by an OpenAI-format upstream:
tool definitions and choice, streamed tool calls (two in one turn), tool results, thinking."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic.types import TextBlock, ThinkingBlock, ToolParam, ToolUseBlock

from ..upstreams.openai_mock import MockUpstream
from .anthropic_client import make_anthropic
from .conftest import new_request_id
from .gateway import Gateway

WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME: ToolParam = {
    "name": "get_time",
    "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}},
}
WEATHER_INPUT = {"city": "Paris", "units": {"temp": "C", "wind": ["km/h", "kn"]}, "note": 'q"uote\\ ü'}
TIME_INPUT = {"zone": "Europe/Paris"}
TWO_CALLS = [
    {"id": "call_w1", "name": "get_weather", "arguments": json.dumps(WEATHER_INPUT)},
    {"id": "call_t2", "name": "get_time", "arguments": json.dumps(TIME_INPUT)},
]


@pytest.fixture
def claude(gateway: Gateway) -> Iterator[anthropic.Anthropic]:
    with make_anthropic(gateway) as c:
        yield c


def ask(claude: anthropic.Anthropic, stream: bool, **kwargs: Any) -> anthropic.types.Message:
    kwargs.setdefault("model", "gpt-test")
    kwargs.setdefault("max_tokens", 128)
    kwargs.setdefault("messages", [{"role": "user", "content": "weather and time in Paris?"}])
    if not stream:
        message: anthropic.types.Message = claude.messages.create(**kwargs)
        return message
    with claude.messages.stream(**kwargs) as s:
        return s.get_final_message()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_two_tool_calls_in_one_turn(claude: anthropic.Anthropic, stream: bool) -> None:
    message = ask(claude, stream, tools=[WEATHER, TIME], extra_body={"mock": {"tool_calls": TWO_CALLS}})
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["tool_use", "tool_use"]
    first, second = message.content
    assert isinstance(first, ToolUseBlock) and isinstance(second, ToolUseBlock)
    assert (first.id, first.name, first.input) == ("call_w1", "get_weather", WEATHER_INPUT)
    assert (second.id, second.name, second.input) == ("call_t2", "get_time", TIME_INPUT)


def test_streamed_tool_arguments_arrive_as_json_deltas_in_order(claude: anthropic.Anthropic) -> None:
    starts: list[tuple[int, str]] = []
    fragments: dict[int, list[str]] = {}
    with claude.messages.stream(
        model="gpt-test",
        max_tokens=128,
        messages=[{"role": "user", "content": "go"}],
        tools=[WEATHER, TIME],
        extra_body={"mock": {"tool_calls": TWO_CALLS, "content": "Checking both."}},
    ) as stream:
        for event in stream:
            if event.type == "content_block_start":
                starts.append((event.index, event.content_block.type))
            elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                fragments.setdefault(event.index, []).append(event.delta.partial_json)
        final = stream.get_final_message()
    assert starts == [(0, "text"), (1, "tool_use"), (2, "tool_use")]
    assert len(fragments[1]) > 1, "the arguments stream in several fragments"
    assert json.loads("".join(fragments[1])) == WEATHER_INPUT
    assert json.loads("".join(fragments[2])) == TIME_INPUT
    assert isinstance(final.content[0], TextBlock)
    assert final.content[0].text == "Checking both."
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]


def test_tool_definitions_and_choice_are_mapped(claude: anthropic.Anthropic, upstream: MockUpstream) -> None:
    expected_tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city",
                "parameters": WEATHER["input_schema"],
            },
        },
        {"type": "function", "function": {"name": "get_time", "parameters": TIME["input_schema"]}},
    ]
    choices: list[tuple[Any, Any, Any]] = [
        ({"type": "auto"}, "auto", None),
        ({"type": "any", "disable_parallel_tool_use": True}, "required", False),
        ({"type": "tool", "name": "get_time"}, {"type": "function", "function": {"name": "get_time"}}, None),
        ({"type": "none"}, "none", None),
    ]
    for choice, openai_choice, parallel in choices:
        rid = new_request_id()
        ask(claude, False, tools=[WEATHER, TIME], tool_choice=choice, extra_headers={"x-request-id": rid})
        sent = upstream.wait_for(rid).body_json
        assert sent["tools"] == expected_tools
        assert sent["tool_choice"] == openai_choice
        assert sent.get("parallel_tool_calls") == parallel


def test_tool_result_round_trip(claude: anthropic.Anthropic, upstream: MockUpstream) -> None:
    rid = new_request_id()
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/chart.png"}}
    # Typed loosely: the SDK's message TypedDicts cannot tell these turns apart for mypy.
    messages: list[Any] = [
        {"role": "user", "content": "weather and time in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_w1", "name": "get_weather", "input": WEATHER_INPUT},
                {"type": "tool_use", "id": "call_t2", "name": "get_time", "input": TIME_INPUT},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_w1", "content": "18 C, sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_t2",
                    "is_error": True,
                    "content": [{"type": "text", "text": "clock unavailable"}, image],
                },
                {"type": "text", "text": "and summarise"},
            ],
        },
    ]
    message = claude.messages.create(
        model="gpt-test",
        max_tokens=64,
        tools=[WEATHER, TIME],
        messages=messages,
        extra_headers={"x-request-id": rid},
    )
    assert isinstance(message.content[0], TextBlock)
    assert message.content[0].text == "mock: and summarise"
    sent = upstream.wait_for(rid).body_json["messages"]
    assert sent[1]["role"] == "assistant"
    assert sent[1]["content"] == "Checking."
    calls = sent[1]["tool_calls"]
    assert [(c["id"], c["type"], c["function"]["name"]) for c in calls] == [
        ("call_w1", "function", "get_weather"),
        ("call_t2", "function", "get_time"),
    ]
    assert json.loads(calls[0]["function"]["arguments"]) == WEATHER_INPUT
    assert json.loads(calls[1]["function"]["arguments"]) == TIME_INPUT
    assert sent[2:] == [
        {"role": "tool", "tool_call_id": "call_w1", "content": "18 C, sunny"},
        {"role": "tool", "tool_call_id": "call_t2", "content": "Error: clock unavailable"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/chart.png"}},
                {"type": "text", "text": "and summarise"},
            ],
        },
    ]


def test_tool_results_alone_need_no_user_message(claude: anthropic.Anthropic, upstream: MockUpstream) -> None:
    rid = new_request_id()
    claude.messages.create(
        model="gpt-test",
        max_tokens=16,
        messages=[
            {"role": "user", "content": "time?"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "c1", "name": "get_time", "input": {}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "noon"}]},
        ],
        extra_headers={"x-request-id": rid},
    )
    sent = upstream.wait_for(rid).body_json["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}],
    }
    assert sent[2:] == [{"role": "tool", "tool_call_id": "c1", "content": "noon"}]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_thinking_maps_to_reasoning_effort_and_back(
    claude: anthropic.Anthropic, upstream: MockUpstream, stream: bool
) -> None:
    rid = new_request_id()
    message = ask(
        claude,
        stream,
        thinking={"type": "enabled", "budget_tokens": 8000},
        extra_body={"mock": {"reasoning": "Paris is in France. Weather is mild."}},
        extra_headers={"x-request-id": rid},
    )
    assert upstream.wait_for(rid).body_json["reasoning_effort"] == "medium"
    assert [b.type for b in message.content] == ["thinking", "text"]
    thinking = message.content[0]
    assert isinstance(thinking, ThinkingBlock)
    assert thinking.thinking == "Paris is in France. Weather is mild."


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_reasoning_not_shown_without_thinking(claude: anthropic.Anthropic, stream: bool) -> None:
    message = ask(claude, stream, extra_body={"mock": {"reasoning": "hidden"}})
    assert [b.type for b in message.content] == ["text"]


def test_unsigned_thinking_in_history_is_left_out(
    claude: anthropic.Anthropic, upstream: MockUpstream
) -> None:
    rid = new_request_id()
    claude.messages.create(
        model="gpt-test",
        max_tokens=16,
        messages=[
            {"role": "user", "content": "q1"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "made by gatecore", "signature": ""},
                    {"type": "text", "text": "a1"},
                ],
            },
            {"role": "user", "content": "q2"},
        ],
        extra_headers={"x-request-id": rid},
    )
    assert upstream.wait_for(rid).body_json["messages"][1] == {"role": "assistant", "content": "a1"}
