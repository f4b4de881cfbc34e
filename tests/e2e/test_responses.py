"""`POST /v1/responses` through the hub translation: the official `openai` SDK's `responses.create` /
`responses.stream` (sync and async, tools included) → gatecore → the OpenAI-chat, Anthropic and Gemini
mocks (tests/upstreams/), with what reached each upstream asserted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.responses import Response

from ..upstreams import anthropic_mock, gemini_mock
from ..upstreams.anthropic_mock import AnthropicMock
from ..upstreams.gemini_mock import GeminiMock
from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .anthropic_client import post_raw, sse_events
from .conftest import make_async_client, make_client, new_request_id
from .gateway import MASTER_KEY, Gateway, GatewayFactory, standard_config
from .ledger_store import LedgerStore

TIMEOUTS = {"connect": 2, "first_byte": 5, "idle": 5, "total": 10}
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
WEB_SEARCH: Any = {"type": "web_search"}
PARIS = '{"city":"Paris"}'
AUTH = {"authorization": f"Bearer {MASTER_KEY}", "x-api-key": ""}
RPM_KEY = "sk-responses-rpm-e2e-77aa"
BUDGET_KEY = "sk-responses-budget-e2e-88bb"


@pytest.fixture(scope="module")
def claude_mock() -> Iterator[AnthropicMock]:
    with AnthropicMock() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gemini() -> Iterator[GeminiMock]:
    with GeminiMock() as upstream:
        yield upstream


def _wildcard(prefix: str, provider: str) -> dict[str, Any]:
    return {
        "name": f"{prefix}/*",
        "deployments": [{"provider": provider, "model": "*"}],
        "timeouts": TIMEOUTS,
    }


@pytest.fixture
def ledger(tmp_path: Path) -> LedgerStore:
    return LedgerStore(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.fixture
def gw(
    upstream: MockUpstream,
    claude_mock: AnthropicMock,
    gemini: GeminiMock,
    gateway_factory: GatewayFactory,
    ledger: LedgerStore,
) -> Gateway:
    providers = [
        {"name": "oai", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up"},
        {"name": "strict", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up",
         "unsupported_tools": "reject"},
        {"name": "claude", "kind": "anthropic", "base_url": claude_mock.origin, "api_key": anthropic_mock.API_KEY},
        {"name": "google", "kind": "gemini", "base_url": gemini.origin, "api_key": gemini_mock.API_KEY},
    ]  # fmt: skip
    models = [
        {"name": "chat-model", "deployments": [{"provider": "oai", "model": "gpt-up"}], "timeouts": TIMEOUTS},
        {"name": "strict-model", "deployments": [{"provider": "strict", "model": "gpt-up"}], "timeouts": TIMEOUTS},
        _wildcard("claude", "claude"),
        _wildcard("gem", "google"),
    ]  # fmt: skip
    keys = [{"key": RPM_KEY, "name": "rpm-key", "rpm": 2}]
    config = {"server": {"access_log": True}, "providers": providers, "models": models,
              "auth": {"master_key": MASTER_KEY, "keys": keys}, "store": {"url": ledger.url}}  # fmt: skip
    return gateway_factory(config)


@pytest.fixture
def client(gw: Gateway) -> Iterator[openai.OpenAI]:
    with make_client(gw, timeout=20) as c:
        yield c


def ask(client: openai.OpenAI, stream: bool, **kwargs: Any) -> Response:
    """One Responses call, whole or streamed (the SDK assembles the streamed response)."""
    if not stream:
        response: Response = client.responses.create(**kwargs)
        return response
    with client.responses.stream(**kwargs) as s:
        for _ in s:
            pass
        return s.get_final_response()


def calls(response: Response) -> list[tuple[str, str, str]]:
    return [(o.call_id, o.name, o.arguments) for o in response.output if o.type == "function_call"]


# -- OpenAI-chat upstream ------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_text_to_chat_upstream(
    client: openai.OpenAI, upstream: MockUpstream, gw: Gateway, ledger: LedgerStore, stream: bool
) -> None:
    rid = new_request_id()
    response = ask(
        client, stream, model="chat-model", instructions="be brief", input="hello there",
        max_output_tokens=64, temperature=0.5, metadata={"k": "v"}, store=False,
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    assert response.output_text == "mock: hello there"
    assert response.status == "completed" and response.model == "chat-model"
    assert response.id.startswith("resp_") and response.metadata == {"k": "v"}
    assert response.usage is not None and response.usage.output_tokens > 0 and response.usage.input_tokens > 0
    sent = upstream.wait_for(rid).body_json
    assert sent["model"] == "gpt-up"
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there"},
    ]
    assert sent["max_tokens"] == 64 and sent["temperature"] == 0.5
    assert "metadata" not in sent and "store" not in sent and "input" not in sent
    # Usage reaches the records as for chat.
    entry = gw.wait_access_log(rid)
    assert entry["status"] == 200
    assert entry["output_tokens"] == response.usage.output_tokens
    (row,) = [r for r in ledger.wait_rows({rid}) if r["request_id"] == rid]
    assert (row["input_tokens"], row["output_tokens"]) == (
        response.usage.input_tokens,
        response.usage.output_tokens,
    )
    assert row["model"] == "chat-model" and row["status"] == 200 and row["streamed"] == stream
    assert row["endpoint"] == "responses"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_tool_round_trip_to_chat_upstream(
    client: openai.OpenAI, upstream: MockUpstream, stream: bool
) -> None:
    rid = new_request_id()
    steer = {"mock": {"tool_calls": [{"id": "call_w1", "name": "get_weather", "arguments": PARIS}]}}
    raw = client.responses.with_raw_response.create(
        model="chat-model", input="weather in Paris?", tools=[WEB_SEARCH, WEATHER], tool_choice="auto",
        parallel_tool_calls=False, extra_body=steer, extra_headers={"x-request-id": rid}, stream=stream,
    )  # fmt: skip
    assert raw.headers["x-gatecore-dropped-tools"] == "web_search"
    if stream:
        events: list[Any] = list(raw.parse())
        first = next(e.response for e in events if e.type == "response.completed")
    else:
        first = raw.parse()
    assert calls(first) == [("call_w1", "get_weather", PARIS)]
    sent = upstream.wait_for(rid).body_json
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]
    assert sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is False
    # The tool result goes back with the call, as a chat tool message after the assistant's call.
    rid2 = new_request_id()
    history: Any = [
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": "call_w1", "name": "get_weather", "arguments": PARIS},
        {"type": "function_call_output", "call_id": "call_w1", "output": "sunny, 21C"},
    ]
    second = ask(client, stream, model="chat-model", input=history, tools=[WEATHER],
                 extra_body={"mock": {"content": "It is sunny."}}, extra_headers={"x-request-id": rid2})  # fmt: skip
    assert second.output_text == "It is sunny."
    messages = upstream.wait_for(rid2).body_json["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "call_w1"
    assert messages[2] == {"role": "tool", "tool_call_id": "call_w1", "content": "sunny, 21C"}


def test_stream_event_sequence(gw: Gateway, upstream: MockUpstream) -> None:
    steer = {
        "tool_calls": [{"id": "call_a", "name": "get_weather", "arguments": PARIS}],
        "content": "Looking.",
    }
    body = {"model": "chat-model", "input": "hi", "tools": [WEATHER], "stream": True, "mock": steer}
    status, headers, answer = post_raw(gw, body, AUTH, path="/v1/responses")
    assert status == 200 and headers["content-type"] == "text/event-stream"
    events = sse_events(answer)
    assert [name for name, _ in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed",
    ]  # fmt: skip
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert all(data["type"] == name for name, data in events)
    done = events[-1][1]["response"]
    assert [o["type"] for o in done["output"]] == ["message", "function_call"]
    assert done["output"][1]["arguments"] == PARIS and done["usage"]["total_tokens"] > 0
    assert events[12][1]["arguments"] == PARIS


def test_stream_broken_midway_ends_with_response_failed(gw: Gateway) -> None:
    body = {"model": "chat-model", "input": "hi", "stream": True, "mock": {"chunks": 5, "cut_after": 3}}
    status, _, answer = post_raw(gw, body, AUTH, path="/v1/responses")
    assert status == 200
    events = sse_events(answer)
    assert events[0][0] == "response.created" and events[-1][0] == "response.failed"
    failed = events[-1][1]["response"]
    assert failed["status"] == "failed" and failed["error"]["message"]
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))


def test_async_create_and_stream(gw: Gateway, upstream: MockUpstream) -> None:
    async def run() -> tuple[Response, Response]:
        async with make_async_client(gw, timeout=20) as aclient:
            whole = await aclient.responses.create(model="chat-model", input="async hi")
            steer = {"mock": {"tool_calls": [{"id": "call_z", "name": "get_weather", "arguments": PARIS}]}}
            async with aclient.responses.stream(
                model="chat-model", input="tool please", tools=[WEATHER], extra_body=steer
            ) as s:
                async for _ in s:
                    pass
                streamed = await s.get_final_response()
            return whole, streamed

    whole, streamed = asyncio.run(run())
    assert whole.output_text == "mock: async hi"
    assert calls(streamed) == [("call_z", "get_weather", PARIS)]


def test_json_schema_and_reasoning_reach_upstream(client: openai.OpenAI, upstream: MockUpstream) -> None:
    rid = new_request_id()
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    image = {"type": "input_image", "image_url": "https://x.test/a.png"}
    items: Any = [{"role": "developer", "content": "dev"},
                  {"role": "user", "content": [{"type": "input_text", "text": "look"}, image]}]  # fmt: skip
    text: Any = {"format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True}}
    client.responses.create(
        model="chat-model", input=items, text=text,
        reasoning={"effort": "low"}, include=["reasoning.encrypted_content"], store=False,
        prompt_cache_key="pk-1", extra_body={"client_metadata": {"x": "y"}}, extra_headers={"x-request-id": rid},
    )  # fmt: skip
    sent = upstream.wait_for(rid).body_json
    assert sent["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "out", "schema": schema, "strict": True}}  # fmt: skip
    assert sent["reasoning_effort"] == "low"
    assert sent["messages"][0] == {"role": "system", "content": "dev"}
    assert sent["messages"][1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "https://x.test/a.png"},
    }
    for field in ("include", "prompt_cache_key", "client_metadata", "store", "text", "reasoning"):
        assert field not in sent


# -- other providers -------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("prefix", ["claude/claude-mock", "gem/gemini-mock"])
def test_other_providers_text_and_tools(client: openai.OpenAI, prefix: str, stream: bool) -> None:
    text = ask(client, stream, model=prefix, input="hello there", instructions="be brief")
    assert text.output_text == "mock: hello there"
    assert text.usage is not None and text.usage.output_tokens > 0
    tool = ask(client, stream, model=f"{prefix}~tools=1", input="weather?", tools=[WEATHER])
    (call,) = calls(tool)
    assert call[1] == "get_weather" and json.loads(call[2])["city"] == "Paris"
    history: Any = [
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": call[0], "name": "get_weather", "arguments": call[2]},
        {"type": "function_call_output", "call_id": call[0], "output": "sunny"},
    ]
    after = ask(client, stream, model=prefix, input=history, tools=[WEATHER])
    assert after.output_text


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "chat-model"}, "input"),
        ({"input": "hi"}, "model"),
        ({"model": "chat-model", "input": [{"type": "mystery_item"}]}, "input[0].type"),
        ({"model": "chat-model", "input": [{"type": "message", "role": "user"}]}, "input[0].content"),
        ({"model": "chat-model", "input": [{"role": "user", "content": [{"type": "input_text"}]}]},
         "input[0].content[0].text"),
        ({"model": "chat-model", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "chat-model", "input": ["text"]}, "input[0]"),
        ({"model": "chat-model", "input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]},
         "input[0].call_id"),
        ({"model": "chat-model", "input": "x", "max_output_tokens": 10**12}, "max_output_tokens"),
        ({"model": "chat-model", "input": "x", "background": True}, "background"),
        ({"model": "chat-model", "input": "x", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"model": "chat-model", "input": "x", "metadata": {"k": "v" * 513}}, "metadata"),
        ({"model": "chat-model", "input": "x", "previous_response_id": "r" * 300}, "previous_response_id"),
        ({"model": "chat-model", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
         "input[0].content[0]"),
        ({"model": "strict-model", "input": "x", "tools": [WEATHER, WEB_SEARCH]}, "tools[1].type"),
    ],
)  # fmt: skip
def test_bad_input_is_400_naming_the_field(gw: Gateway, body: dict[str, Any], param: str) -> None:
    status, _, answer = post_raw(gw, body, AUTH, path="/v1/responses")
    assert status == 400, answer
    error = json.loads(answer)["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_oversized_and_malformed_input(gw: Gateway) -> None:
    many = {"model": "chat-model", "input": [{"role": "user", "content": "x"}] * 10_001}
    status, _, answer = post_raw(gw, many, AUTH, path="/v1/responses")
    assert status == 400 and json.loads(answer)["error"]["param"] == "input"
    for raw in (b"{not json", b"[1,2]", b""):
        status, _, answer = post_raw(gw, raw, AUTH, path="/v1/responses")
        assert status == 400 and "error" in json.loads(answer)


def test_rate_limit_applies_as_for_chat(gw: Gateway) -> None:
    auth = {"authorization": f"Bearer {RPM_KEY}", "x-api-key": ""}
    body = {"model": "chat-model", "input": "count me", "stream": True}
    for _ in range(2):
        status, headers, _ = post_raw(gw, body, auth, path="/v1/responses")
        assert status == 200 and headers["x-ratelimit-limit-requests"] == "2"
    status, headers, answer = post_raw(gw, body, auth, path="/v1/responses")
    assert status == 429 and int(headers["retry-after"]) >= 1
    error = json.loads(answer)["error"]
    assert error["type"] == "rate_limit_error" or "rpm" in error["message"]


def test_whole_upstream_answer_to_a_streamed_request(gw: Gateway) -> None:
    """An upstream that answers a stream request with one JSON body: the client still gets events."""
    steer = {"no_stream": True, "tool_calls": [{"id": "call_w", "name": "get_weather", "arguments": PARIS}],
             "content": "Checking."}  # fmt: skip
    body = {"model": "chat-model", "input": "hi", "tools": [WEATHER], "stream": True, "mock": steer}
    status, headers, answer = post_raw(gw, body, AUTH, path="/v1/responses")
    assert status == 200 and headers["content-type"] == "text/event-stream"
    events = sse_events(answer)
    names = [name for name, _ in events]
    assert names[:2] == ["response.created", "response.in_progress"] and names[-1] == "response.completed"
    assert "response.output_text.delta" in names and "response.function_call_arguments.done" in names
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    output = events[-1][1]["response"]["output"]
    assert [o["type"] for o in output] == ["message", "function_call"] and output[1]["call_id"] == "call_w"


def test_budget_applies_as_for_chat(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    """$1 a token, a $10 key budget: a chat request and a Responses request of $5 each spend it all,
    and the next `/v1/responses` request is refused like chat's, in OpenAI's shape."""
    config = standard_config(upstream.base_url, refused.base_url)
    for model in config["models"]:
        for deployment in model["deployments"]:
            deployment["pricing"] = {"input_per_1m": 1e6, "output_per_1m": 1e6}
    config["auth"]["keys"].append({"key": BUDGET_KEY, "name": "budget-key", "budget_usd": 10.0})
    gw = gateway_factory(config)
    four: Any = {"mock": {"chunks": 4}}
    with make_client(gw, BUDGET_KEY) as client:
        client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}],
                                       max_tokens=4, extra_body=four)  # fmt: skip
        client.responses.create(model="gpt-test", input="hi", extra_body=four)
        with pytest.raises(openai.RateLimitError) as info:
            client.responses.create(model="gpt-test", input="hi", extra_body=four)
    error = info.value.body
    assert isinstance(error, dict) and error["code"] == "budget_exceeded" and "budget-key" in error["message"]
