"""The Anthropic Messages API through gatecore, with the official `anthropic` SDK, served by an
OpenAI-format upstream: text, streams, what reaches the upstream, stop reasons, usage, count_tokens."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic.types import MessageParam, TextBlock

from ..upstreams.openai_mock import MockUpstream
from .anthropic_client import make_anthropic
from .conftest import new_request_id
from .gateway import Gateway, GatewayFactory

PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n-not-really-a-png").decode()


@pytest.fixture
def claude(gateway: Gateway) -> Iterator[anthropic.Anthropic]:
    with make_anthropic(gateway) as c:
        yield c


def user(text: str) -> list[MessageParam]:
    return [{"role": "user", "content": text}]


def rid_headers() -> tuple[str, dict[str, str]]:
    rid = new_request_id()
    return rid, {"x-request-id": rid}


def test_non_stream_text(claude: anthropic.Anthropic, upstream: MockUpstream) -> None:
    rid, headers = rid_headers()
    message = claude.messages.create(
        model="gpt-test", max_tokens=64, messages=user("hello there"), extra_headers=headers
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == "gpt-test"
    assert len(message.content) == 1
    block = message.content[0]
    assert isinstance(block, TextBlock)
    assert block.text == "mock: hello there"
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    sent = upstream.wait_for(rid)
    assert sent.path == "/v1/chat/completions"
    assert sent.body_json["model"] == "upstream-model-1"
    assert sent.body_json["messages"] == [{"role": "user", "content": "hello there"}]
    assert sent.body_json["max_tokens"] == 64
    usage = sent.response_json["usage"]
    assert message.usage.input_tokens == usage["prompt_tokens"]
    assert message.usage.output_tokens == usage["completion_tokens"]


def test_stream_is_accounted(claude: anthropic.Anthropic, gateway: Gateway) -> None:
    rid, headers = rid_headers()
    with claude.messages.stream(
        model="gpt-test", max_tokens=64, messages=user("log me"), extra_headers=headers
    ) as stream:
        final = stream.get_final_message()
    entry = gateway.wait_access_log(rid)
    assert entry["status"] == 200
    assert entry["streamed"] is True
    assert entry["usage_source"] == "upstream"
    assert entry["input_tokens"] == final.usage.input_tokens
    assert entry["output_tokens"] == final.usage.output_tokens


def test_echo_model_in_demo_mode(gateway_factory: GatewayFactory) -> None:
    # Any configured model: the in-process echo provider, streamed and whole.
    demo = gateway_factory(None, extra_args=["--demo"])
    with make_anthropic(demo, key="unused") as c:
        whole = c.messages.create(model="echo", max_tokens=16, messages=user("say this back"))
        with c.messages.stream(model="echo", max_tokens=16, messages=user("and stream it")) as stream:
            final = stream.get_final_message()
    assert isinstance(whole.content[0], TextBlock)
    assert whole.content[0].text == "say this back"
    assert isinstance(final.content[0], TextBlock)
    assert final.content[0].text == "and stream it"
    assert final.usage.output_tokens > 0


def test_stream_text_final_message(claude: anthropic.Anthropic, upstream: MockUpstream) -> None:
    rid, headers = rid_headers()
    texts: list[str] = []
    with claude.messages.stream(
        model="gpt-test", max_tokens=64, messages=user("stream me please"), extra_headers=headers
    ) as stream:
        texts.extend(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == "mock: stream me please"
    assert len(texts) > 1, "the text arrives in several deltas"
    assert [b.type for b in final.content] == ["text"]
    assert isinstance(final.content[0], TextBlock)
    assert final.content[0].text == "mock: stream me please"
    assert final.stop_reason == "end_turn"
    assert final.model == "gpt-test"
    sent = upstream.wait_for(rid)
    assert sent.body_json["stream"] is True
    # The gateway asked for usage itself, so the final message has the upstream's figures.
    assert sent.body_json["stream_options"] == {"include_usage": True}
    usage = sent.event_objects()[-1]["usage"]
    assert final.usage.input_tokens == usage["prompt_tokens"]
    assert final.usage.output_tokens == usage["completion_tokens"]


def test_stream_without_upstream_usage_is_counted(
    claude: anthropic.Anthropic, upstream: MockUpstream
) -> None:
    with claude.messages.stream(
        model="gpt-test",
        max_tokens=64,
        messages=user("count these words please"),
        extra_body={"mock": {"no_usage": True}},
    ) as stream:
        final = stream.get_final_message()
    assert final.usage.output_tokens > 0
    assert final.usage.input_tokens > 0


def test_system_and_multi_turn_reach_the_upstream(
    claude: anthropic.Anthropic, upstream: MockUpstream
) -> None:
    rid, headers = rid_headers()
    claude.messages.create(
        model="gpt-test",
        max_tokens=32,
        system=[{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Answer in French."}],
        messages=[
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": [{"type": "text", "text": "first answer"}]},
            {
                "role": "user",
                "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "question"}],
            },
        ],
        extra_headers=headers,
    )
    assert upstream.wait_for(rid).body_json["messages"] == [
        {"role": "system", "content": "You are terse.\n\nAnswer in French."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "question"}],
        },
    ]


def test_string_system_prompt(claude: anthropic.Anthropic, upstream: MockUpstream) -> None:
    rid, headers = rid_headers()
    claude.messages.create(
        model="gpt-test", max_tokens=8, system="be brief", messages=user("hi"), extra_headers=headers
    )
    assert upstream.wait_for(rid).body_json["messages"][0] == {"role": "system", "content": "be brief"}


def test_images_reach_the_upstream_as_image_url_parts(
    claude: anthropic.Anthropic, upstream: MockUpstream
) -> None:
    rid, headers = rid_headers()
    claude.messages.create(
        model="gpt-test",
        max_tokens=16,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                    {"type": "text", "text": "what are these?"},
                ],
            }
        ],
        extra_headers=headers,
    )
    assert upstream.wait_for(rid).body_json["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {"type": "text", "text": "what are these?"},
            ],
        }
    ]


def test_sampling_options_are_mapped(claude: anthropic.Anthropic, upstream: MockUpstream) -> None:
    rid, headers = rid_headers()
    claude.messages.create(
        model="gpt-test",
        max_tokens=77,
        messages=user("options"),
        stop_sequences=["\n\nHuman:", "STOP"],
        metadata={"user_id": "user-1234"},
        # This SDK version no longer declares the sampling fields; the API still takes them.
        extra_body={"temperature": 0.25, "top_p": 0.5, "top_k": 40},
        extra_headers=headers,
    )
    sent = upstream.wait_for(rid).body_json
    assert sent["max_tokens"] == 77
    assert sent["stop"] == ["\n\nHuman:", "STOP"]
    assert sent["temperature"] == 0.25
    assert sent["top_p"] == 0.5
    assert sent["top_k"] == 40
    assert sent["user"] == "user-1234"
    assert "stop_sequences" not in sent and "metadata" not in sent


STOP_REASONS = [
    ({"finish_reason": "stop"}, "end_turn", None),
    ({"finish_reason": "length"}, "max_tokens", None),
    ({"finish_reason": "content_filter"}, "refusal", None),
    ({"finish_reason": "tool_calls", "tool_calls": [{"name": "f", "arguments": "{}"}]}, "tool_use", None),
    # vLLM and SGLang name the stop string that matched.
    ({"finish_reason": "stop", "stop_reason": "STOP"}, "stop_sequence", "STOP"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("mock", "reason", "sequence"), STOP_REASONS, ids=[r[1] for r in STOP_REASONS])
def test_stop_reason_mapping(
    claude: anthropic.Anthropic, mock: dict[str, Any], reason: str, sequence: str | None, stream: bool
) -> None:
    kwargs: dict[str, Any] = {
        "model": "gpt-test",
        "max_tokens": 16,
        "messages": user("why stop"),
        "stop_sequences": ["STOP"],
        "extra_body": {"mock": mock},
    }
    if stream:
        with claude.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = claude.messages.create(**kwargs)
    assert message.stop_reason == reason
    assert message.stop_sequence == sequence


def test_stream_request_answered_whole_becomes_events(claude: anthropic.Anthropic) -> None:
    # An upstream that ignores `stream` and answers one JSON body: the client still gets its stream.
    with claude.messages.stream(
        model="gpt-test",
        max_tokens=16,
        messages=user("whole please"),
        extra_body={"mock": {"no_stream": True}},
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == "mock: whole please"
    assert final.stop_reason == "end_turn"


def test_stream_all_at_once(claude: anthropic.Anthropic) -> None:
    # Every upstream event already there when the head is read: the one-write path.
    with claude.messages.stream(
        model="gpt-test",
        max_tokens=16,
        messages=user("all at once"),
        extra_body={"mock": {"all_at_once": True}},
    ) as stream:
        final = stream.get_final_message()
    assert isinstance(final.content[0], TextBlock)
    assert final.content[0].text == "mock: all at once"
    assert final.usage.output_tokens > 0


def test_count_tokens(claude: anthropic.Anthropic, upstream: MockUpstream) -> None:
    before = len(upstream.requests)
    short = claude.messages.count_tokens(model="gpt-test", messages=user("hello"))
    longer = claude.messages.count_tokens(
        model="gpt-test",
        system="You are a helpful assistant with a long system prompt.",
        messages=user("hello"),
        tools=[
            {
                "name": "get_weather",
                "description": "Weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
    )
    assert short.input_tokens == 1  # "hello" is one o200k token
    assert longer.input_tokens > short.input_tokens + 20
    assert len(upstream.requests) == before, "counting never calls the upstream"


def test_count_tokens_unknown_model(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        claude.messages.count_tokens(model="no-such-model", messages=user("hello"))
    assert info.value.status_code == 404
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["type"] == "not_found_error"


def test_bare_base_url_route(gateway: Gateway) -> None:
    # Clients configured with a base URL ending in /v1 call /v1/v1/...; the bare /messages works too.
    with make_anthropic(gateway) as c:
        c.base_url = gateway.base_url + "/"
        message = c.messages.create(model="gpt-test", max_tokens=8, messages=user("bare"))
    assert message.content
