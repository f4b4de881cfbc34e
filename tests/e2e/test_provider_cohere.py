"""The `cohere` provider (v2 chat, SSE events) end to end with the openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from ..upstreams.cohere_mock import CohereMock
from .conftest import make_client
from .gateway import Gateway
from .provider_harness import chat, collect_stream, error_body, gateway_for, new_request_id, tool_calls_of

KEY = "co-secret-e2e-7d1e"
TOOLS: list[dict[str, object]] = [
    {
        "type": "function",
        "function": {"name": f, "description": f"{f} tool", "parameters": {"type": "object"}},
    }
    for f in ("get_weather", "get_time")
]
USER = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def mock() -> Iterator[CohereMock]:
    with CohereMock(KEY) as m:
        yield m


@pytest.fixture(scope="module")
def gw(mock: CohereMock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    provider = {"name": "co", "kind": "cohere", "base_url": mock.base_url, "api_key": "${E2E_COHERE_KEY}"}
    # command-a-03-2025 takes no images in the shipped model table; these tests check how images translate.
    vision = {"capabilities": {"vision": True}}
    with gateway_for(
        tmp_path_factory,
        provider,
        {"command": "command-a-03-2025"},
        env={"E2E_COHERE_KEY": KEY},
        model_options=vision,
    ) as g:
        yield g


@pytest.fixture
def client(gw: Gateway) -> Iterator[openai.OpenAI]:
    with make_client(gw) as c:
        yield c


def test_non_stream_multi_turn_with_system(client: openai.OpenAI, mock: CohereMock, gw: Gateway) -> None:
    rid = new_request_id()
    resp = chat(
        client, model="command", extra_headers={"x-request-id": rid},
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                  {"role": "assistant", "content": "hello"}, {"role": "user", "content": "how are you"}],
    )  # fmt: skip
    assert resp.choices[0].message.content == "mock: how are you"
    assert resp.choices[0].finish_reason == "stop"
    sent = mock.wait_for(rid)
    assert sent.path == "/v2/chat"
    assert sent.body_json["model"] == "command-a-03-2025" and sent.body_json["stream"] is False
    assert sent.body_json["messages"] == [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"}, {"role": "user", "content": "how are you"},
    ]  # fmt: skip
    tokens = sent.response_json["usage"]["tokens"]
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (
        tokens["input_tokens"],
        tokens["output_tokens"],
    )
    assert KEY not in gw.output()


def test_stream_text_and_usage(gw: Gateway, mock: CohereMock) -> None:
    rid = new_request_id()
    result = collect_stream(gw, rid, model="command", messages=USER, stream_options={"include_usage": True})
    assert result.error is None
    assert result.text == "mock: hello there"
    assert result.finish_reason == "stop"
    usage = result.chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 3
    assert mock.wait_for(rid).body_json["stream"] is True


def test_sampling_params(client: openai.OpenAI, mock: CohereMock) -> None:
    rid = new_request_id()
    chat(
        client, model="command", messages=USER, temperature=0.4, top_p=0.7, max_tokens=50, stop=["x", "y"], seed=3,
        frequency_penalty=0.1, presence_penalty=0.2, extra_body={"top_k": 5}, extra_headers={"x-request-id": rid},
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}},
    )  # fmt: skip
    body = mock.wait_for(rid).body_json
    assert {k: body[k] for k in ("temperature", "p", "k", "max_tokens", "stop_sequences", "seed")} == {
        "temperature": 0.4, "p": 0.7, "k": 5, "max_tokens": 50, "stop_sequences": ["x", "y"], "seed": 3
    }  # fmt: skip
    assert (body["frequency_penalty"], body["presence_penalty"]) == (0.1, 0.2)
    assert body["response_format"] == {"type": "json_object", "json_schema": {"type": "object"}}


@pytest.mark.parametrize(("reason", "finish"), [("MAX_TOKENS", "length"), ("STOP_SEQUENCE", "stop")])
def test_finish_reasons(client: openai.OpenAI, mock: CohereMock, reason: str, finish: str) -> None:
    rid = new_request_id()
    mock.script(rid, finish=reason)
    assert (
        chat(client, model="command", messages=USER, extra_headers={"x-request-id": rid})
        .choices[0]
        .finish_reason
        == finish
    )


def test_two_tools_streamed_in_order(gw: Gateway, mock: CohereMock) -> None:
    rid = new_request_id()
    mock.script(rid, tool_calls=[("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})])
    result = collect_stream(gw, rid, model="command", messages=USER, tools=TOOLS, tool_choice="required")
    assert result.error is None
    calls = tool_calls_of(result.chunks)
    assert [(c["id"], c["name"]) for c in calls] == [("call_0", "get_weather"), ("call_1", "get_time")]
    assert [json.loads(c["arguments"]) for c in calls] == [{"city": "Paris"}, {"tz": "CET"}]
    assert result.text == "I will call the tools."  # the tool plan
    assert result.finish_reason == "tool_calls"
    body = mock.wait_for(rid).body_json
    assert body["tools"] == TOOLS and body["tool_choice"] == "REQUIRED"


def test_tool_round_trip_reaches_cohere_format(client: openai.OpenAI, mock: CohereMock) -> None:
    rid = new_request_id()
    chat(
        client, model="command", tools=TOOLS, extra_headers={"x-request-id": rid},
        messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": "I will look it up.", "tool_calls": [
                {"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
            {"role": "tool", "tool_call_id": "call_9", "content": "sunny"},
        ],
    )  # fmt: skip
    messages = mock.wait_for(rid).body_json["messages"]
    assert messages[1] == {
        "role": "assistant", "tool_plan": "I will look it up.",
        "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}],
    }  # fmt: skip
    assert messages[2] == {"role": "tool", "tool_call_id": "call_9", "content": "sunny"}


def test_image_reaches_cohere(client: openai.OpenAI, mock: CohereMock) -> None:
    rid = new_request_id()
    parts = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    chat(
        client,
        model="command",
        messages=[{"role": "user", "content": parts}],
        extra_headers={"x-request-id": rid},
    )
    assert mock.wait_for(rid).body_json["messages"][0]["content"] == parts


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"tool_choice": {"type": "function", "function": {"name": "get_time"}}, "tools": TOOLS}, "tool_choice"),
     ({"n": 2}, "n"), ({"logit_bias": {"1": 2}}, "logit_bias")],
)  # fmt: skip
def test_untranslatable_fields_are_400(client: openai.OpenAI, extra: dict[str, object], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat(client, model="command", messages=USER, **extra)
    assert error_body(info.value)["param"] == param


@pytest.mark.parametrize(
    ("status", "type_"), [(400, "invalid_request_error"), (429, "rate_limit_error"), (500, "api_error")]
)
def test_upstream_errors_map(client: openai.OpenAI, mock: CohereMock, status: int, type_: str) -> None:
    rid = new_request_id()
    mock.script(rid, status=status, error="too many tokens")
    with pytest.raises(openai.APIStatusError) as info:
        chat(client, model="command", messages=USER, extra_headers={"x-request-id": rid})
    assert info.value.status_code == status
    assert error_body(info.value)["message"] == "too many tokens"
    assert error_body(info.value)["type"] == type_


@pytest.mark.parametrize(
    ("script", "needle"),
    [
        ({"corrupt": "bad_json"}, "not a JSON object"),
        ({"corrupt": "no_end"}, "message-end"),
        ({"corrupt": "error_event"}, "internal server error"),
        ({"corrupt": "truncated"}, "middle of an event"),
        ({"cut_after": 2}, "closed the connection"),
        ({"content_type": "application/json", "corrupt": "json_body"}, "event stream"),
    ],
)
def test_malformed_streams_end_with_error(
    gw: Gateway, mock: CohereMock, script: dict[str, object], needle: str
) -> None:
    rid = new_request_id()
    mock.script(rid, **script)
    result = collect_stream(gw, rid, model="command", messages=USER)
    assert result.error is not None, "the stream ended without an error"
    assert needle in str(result.error.message)
    assert result.elapsed < 5
