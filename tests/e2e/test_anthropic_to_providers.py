"""Anthropic clients served by translating providers: the official `anthropic` SDK → gatecore's
`/v1/messages` → the hub format → the Anthropic, Gemini and Bedrock upstreams (tests/upstreams/)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic.types import Message, TextBlock, ToolParam, ToolUseBlock

from ..upstreams import anthropic_mock, gemini_mock
from ..upstreams.anthropic_mock import AnthropicMock
from ..upstreams.bedrock_mock import BedrockMock
from ..upstreams.gemini_mock import GeminiMock
from .anthropic_client import anthropic_error, make_anthropic, post_raw, sse_events
from .conftest import new_request_id
from .gateway import MASTER_KEY, Gateway, GatewayFactory

ACCESS_KEY = "AKIDE2EANTHROPICIN"
AWS_SECRET = "bedrock-secret-anthropic-in-3c7d"
BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
SECRETS = (anthropic_mock.API_KEY, gemini_mock.API_KEY, AWS_SECRET, MASTER_KEY)
PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\nanthropic-in-image").decode()
TIMEOUTS = {"connect": 2, "first_byte": 5, "idle": 5, "total": 10}

WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "Weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "integer"}}},
}
TIME: ToolParam = {
    "name": "get_time",
    "description": "Local time of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "integer"}}},
}
USER: list[Any] = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def claude_mock() -> Iterator[AnthropicMock]:
    with AnthropicMock() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gemini() -> Iterator[GeminiMock]:
    with GeminiMock() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def bedrock() -> Iterator[BedrockMock]:
    with BedrockMock(ACCESS_KEY, AWS_SECRET, "us-east-1") as upstream:
        yield upstream


def _wildcard(prefix: str, provider: str) -> dict[str, Any]:
    return {
        "name": f"{prefix}/*",
        "deployments": [{"provider": provider, "model": "*"}],
        "timeouts": TIMEOUTS,
    }


@pytest.fixture
def gw(
    claude_mock: AnthropicMock, gemini: GeminiMock, bedrock: BedrockMock, gateway_factory: GatewayFactory
) -> Gateway:
    providers = [
        {"name": "claude", "kind": "anthropic", "base_url": claude_mock.origin,
         "api_key": anthropic_mock.API_KEY},
        {"name": "google", "kind": "gemini", "base_url": gemini.origin, "api_key": gemini_mock.API_KEY},
        {"name": "aws", "kind": "bedrock", "base_url": bedrock.base_url, "aws_region": "us-east-1",
         "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": AWS_SECRET},
    ]  # fmt: skip
    models = [
        _wildcard("claude", "claude"),
        _wildcard("gem", "google"),
        {"name": "sonnet-aws", "deployments": [{"provider": "aws", "model": BEDROCK_MODEL}], "timeouts": TIMEOUTS},
    ]  # fmt: skip
    config = {"server": {"access_log": True}, "providers": providers, "models": models,
              "auth": {"master_key": MASTER_KEY}}  # fmt: skip
    return gateway_factory(config)


@pytest.fixture
def claude(gw: Gateway) -> Iterator[anthropic.Anthropic]:
    with make_anthropic(gw) as c:
        yield c


def ask(claude: anthropic.Anthropic, stream: bool, **kwargs: Any) -> Message:
    """One Messages call, whole or streamed (the SDK assembles the streamed message)."""
    kwargs.setdefault("max_tokens", 200)
    kwargs.setdefault("messages", USER)
    if not stream:
        message: Message = claude.messages.create(**kwargs)
        return message
    with claude.messages.stream(**kwargs) as s:
        return s.get_final_message()


def tool_uses(message: Message) -> list[tuple[str, str, object]]:
    return [(b.id, b.name, b.input) for b in message.content if isinstance(b, ToolUseBlock)]


# -- Anthropic client → Anthropic upstream ----------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_anthropic_upstream_text(
    claude: anthropic.Anthropic, claude_mock: AnthropicMock, stream: bool
) -> None:
    rid = new_request_id()
    message = ask(
        claude, stream, model="claude/claude-mock", system="be brief", extra_headers={"x-request-id": rid}
    )
    assert [b.type for b in message.content] == ["text"]
    assert isinstance(message.content[0], TextBlock) and message.content[0].text == "mock: hello there"
    assert message.stop_reason == "end_turn"
    assert message.model == "claude/claude-mock"
    assert message.id == "msg_mock01"  # the upstream's own id, not prefixed twice
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 3)  # system words count
    sent = claude_mock.wait_for(rid)
    assert sent.headers["x-api-key"] == anthropic_mock.API_KEY  # the provider's key, not the client's
    assert sent.body_json["model"] == "claude-mock"
    assert sent.body_json["system"] == "be brief"
    assert sent.body_json["max_tokens"] == 200
    assert sent.body_json.get("stream") is (True if stream else None)


def test_anthropic_upstream_cached_tokens_reach_the_client(claude: anthropic.Anthropic) -> None:
    message = ask(claude, False, model="claude/claude-mock~cache=7")
    assert message.usage.cache_read_input_tokens == 7
    # Anthropic's input_tokens leaves the cache reads out; the round trip through OpenAI's
    # prompt_tokens (which counts them) gives the same split back. The 2 cache-write tokens have no
    # field in the hub format, so they come back as plain input: 2 + 2.
    assert message.usage.input_tokens == 4


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_anthropic_upstream_two_tools_in_one_turn(claude: anthropic.Anthropic, stream: bool) -> None:
    message = ask(claude, stream, model="claude/claude-mock~tools=2", tools=[WEATHER, TIME])
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use"]
    assert tool_uses(message) == [
        ("toolu_00", "get_weather", {"n": 0, "city": "Paris"}),
        ("toolu_01", "get_time", {"n": 1, "city": "Tokyo"}),
    ]


def test_anthropic_upstream_streamed_tool_events_in_order(claude: anthropic.Anthropic) -> None:
    starts: list[tuple[int, str]] = []
    fragments: dict[int, list[str]] = {}
    with claude.messages.stream(
        model="claude/claude-mock~tools=2", max_tokens=100, messages=USER, tools=[WEATHER, TIME]
    ) as stream:
        for event in stream:
            if event.type == "content_block_start":
                starts.append((event.index, event.content_block.type))
            elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                fragments.setdefault(event.index, []).append(event.delta.partial_json)
    assert starts == [(0, "text"), (1, "tool_use"), (2, "tool_use")]
    assert json.loads("".join(fragments[1])) == {"n": 0, "city": "Paris"}
    assert json.loads("".join(fragments[2])) == {"n": 1, "city": "Tokyo"}
    assert len(fragments[1]) > 1, "the arguments were not streamed in pieces"


def test_anthropic_upstream_tool_results_round_trip(
    claude: anthropic.Anthropic, claude_mock: AnthropicMock
) -> None:
    rid = new_request_id()
    messages: list[Any] = [
        {"role": "user", "content": "weather and time?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_b", "content": [{"type": "text", "text": "noon"}]},
        ]},
    ]  # fmt: skip
    message = ask(
        claude, False, model="claude/claude-mock", messages=messages, tools=[WEATHER, TIME],
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    assert isinstance(message.content[0], TextBlock)
    assert message.content[0].text == "results: sunny | noon"
    sent = claude_mock.wait_for(rid).body_json["messages"]
    assert [b["type"] for b in sent[1]["content"]] == ["tool_use", "tool_use"]
    assert [(b["type"], b["tool_use_id"]) for b in sent[2]["content"]] == [
        ("tool_result", "toolu_a"),
        ("tool_result", "toolu_b"),
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_anthropic_upstream_images(
    claude: anthropic.Anthropic, claude_mock: AnthropicMock, stream: bool
) -> None:
    rid = new_request_id()
    content: list[Any] = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "text", "text": "what are these"},
    ]
    message = ask(
        claude, stream, model="claude/claude-mock", messages=[{"role": "user", "content": content}],
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    assert isinstance(message.content[0], TextBlock) and message.content[0].text == "mock: what are these"
    blocks = claude_mock.wait_for(rid).body_json["messages"][0]["content"]
    assert blocks == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "text", "text": "what are these"},
    ]


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (529, anthropic.InternalServerError, "overloaded_error"),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_anthropic_upstream_errors_keep_status_and_type(
    claude: anthropic.Anthropic,
    gw: Gateway,
    status: int,
    error_class: type[Exception],
    error_type: str,
    stream: bool,
) -> None:
    with pytest.raises(error_class) as caught:
        ask(claude, stream, model=f"claude/claude-mock~status={status}")
    error = caught.value
    assert isinstance(error, anthropic.APIStatusError)
    assert error.status_code == status
    assert isinstance(error.body, dict) and error.body["type"] == "error"
    assert error.body["error"]["type"] == error_type
    assert error.body["error"]["message"] == f"mock {error_type} ({status})"
    for secret in SECRETS:
        assert secret not in json.dumps(error.body)
    assert anthropic_mock.API_KEY not in gw.output()


def test_anthropic_upstream_stream_error_event_reaches_the_client(gw: Gateway) -> None:
    body = {"model": "claude/claude-mock~stream_error", "max_tokens": 50, "messages": USER, "stream": True}
    status, _, raw = post_raw(gw, body)
    assert status == 200
    events = sse_events(raw)
    assert events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] == "overloaded_error"
    assert "message_stop" not in [name for name, _ in events]


def test_anthropic_upstream_truncated_stream_ends_with_error(gw: Gateway) -> None:
    body = {"model": "claude/claude-mock~truncate", "max_tokens": 50, "messages": USER, "stream": True}
    status, _, raw = post_raw(gw, body)
    assert status == 200
    name, data = sse_events(raw)[-1]
    assert name == "error" and data["error"]["message"]


def test_anthropic_upstream_error_body_without_stream(gw: Gateway) -> None:
    body = {"model": "claude/claude-mock~status=529", "max_tokens": 50, "messages": USER}
    status, headers, raw = post_raw(gw, body)
    assert status == 529
    assert headers["content-type"] == "application/json"
    assert anthropic_error(raw) == {"type": "overloaded_error", "message": "mock overloaded_error (529)"}


# -- Anthropic client → Gemini ----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_gemini_two_tools(claude: anthropic.Anthropic, gemini: GeminiMock, stream: bool) -> None:
    rid = new_request_id()
    message = ask(
        claude, stream, model="gem/gemini-mock~tools=2", tools=[WEATHER, TIME], system="use tools",
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    assert message.stop_reason == "tool_use"
    calls = tool_uses(message)
    assert [(name, args) for _, name, args in calls] == [
        ("get_weather", {"n": 0, "city": "Paris"}),
        ("get_time", {"n": 1, "city": "Tokyo"}),
    ]
    assert len({tool_id for tool_id, _, _ in calls}) == 2, "tool_use ids must be distinct"
    assert message.model == "gem/gemini-mock~tools=2"
    sent = gemini.wait_for(rid)
    assert sent.headers["x-goog-api-key"] == gemini_mock.API_KEY
    assert sent.body_json["systemInstruction"] == {"parts": [{"text": "use tools"}]}
    declared = [d["name"] for t in sent.body_json["tools"] for d in t["functionDeclarations"]]
    assert declared == ["get_weather", "get_time"]


def test_gemini_image_arrives_as_inline_data(claude: anthropic.Anthropic, gemini: GeminiMock) -> None:
    rid = new_request_id()
    content: list[Any] = [
        {"type": "text", "text": "what is this"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
    ]
    message = ask(
        claude, True, model="gem/gemini-mock", messages=[{"role": "user", "content": content}],
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    assert isinstance(message.content[0], TextBlock) and message.content[0].text.startswith("mock: ")
    parts = gemini.wait_for(rid).body_json["contents"][0]["parts"]
    assert {"inlineData": {"mimeType": "image/png", "data": PNG_B64}} in parts


@pytest.mark.parametrize(
    ("status", "error_type"), [(429, "rate_limit_error"), (400, "invalid_request_error")]
)
def test_gemini_errors_in_anthropic_shape(gw: Gateway, status: int, error_type: str) -> None:
    body = {"model": f"gem/gemini-mock~status={status}", "max_tokens": 50, "messages": USER}
    got, _, raw = post_raw(gw, body)
    assert got == status
    error = anthropic_error(raw)
    assert error["type"] == error_type and error["message"]
    assert gemini_mock.API_KEY not in raw.decode()


@pytest.mark.parametrize("steer", ["stream_error", "badjson=1", "no_finish", "ctype=text/html"])
def test_gemini_broken_streams_end_with_an_error_event(gw: Gateway, steer: str) -> None:
    body = {"model": f"gem/gemini-mock~{steer}", "max_tokens": 50, "messages": USER, "stream": True}
    status, _, raw = post_raw(gw, body)
    assert status == 200
    events = sse_events(raw)
    name, data = events[-1]
    assert name == "error" and data["error"]["type"] == "api_error" and data["error"]["message"]
    assert "message_stop" not in [n for n, _ in events]
    assert gemini_mock.API_KEY not in raw.decode()


# -- Anthropic client → Bedrock ---------------------------------------------------------------------


def test_bedrock_stream_with_two_tools(claude: anthropic.Anthropic, bedrock: BedrockMock) -> None:
    rid = new_request_id()
    bedrock.script(
        rid, tool_calls=[("get_weather", {"city": "Paris"}), ("get_time", {"city": "Tokyo", "n": 2})]
    )
    message = ask(
        claude, True, model="sonnet-aws", tools=[WEATHER, TIME], extra_headers={"x-request-id": rid}
    )
    assert message.stop_reason == "tool_use"
    assert tool_uses(message) == [
        ("tooluse_0", "get_weather", {"city": "Paris"}),
        ("tooluse_1", "get_time", {"city": "Tokyo", "n": 2}),
    ]
    sent = bedrock.wait_for(rid)
    assert sent.status == 200, sent.response_json  # the mock verified the SigV4 signature
    assert sent.path.endswith("/converse-stream")
    assert [t["toolSpec"]["name"] for t in sent.body_json["toolConfig"]["tools"]] == [
        "get_weather",
        "get_time",
    ]


def test_bedrock_stream_text_and_usage(claude: anthropic.Anthropic, bedrock: BedrockMock) -> None:
    events: list[str] = []
    with claude.messages.stream(model="sonnet-aws", max_tokens=100, messages=USER) as stream:
        events.extend(event.type for event in stream)
        message = stream.get_final_message()
    assert isinstance(message.content[0], TextBlock) and message.content[0].text == "mock: hello there"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3
    assert events[0] == "message_start" and events[-1] == "message_stop"


def test_bedrock_throttling_is_a_rate_limit_error(claude: anthropic.Anthropic, bedrock: BedrockMock) -> None:
    rid = new_request_id()
    bedrock.script(rid, status=429)
    with pytest.raises(anthropic.RateLimitError) as caught:
        ask(claude, True, model="sonnet-aws", extra_headers={"x-request-id": rid})
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert AWS_SECRET not in json.dumps(caught.value.body)
