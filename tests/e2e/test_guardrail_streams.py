"""Streamed tool-call arguments and reasoning held and checked like text (issue 20): an entity split
across the upstream's argument fragments is redacted in what the client reassembles, on chat,
messages and responses streams; tokens come back inside streamed arguments (JSON-escaped); the
tool call's id and name reach the client unchanged; reasoning deltas are redacted too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openai.types.chat import ChatCompletionFunctionToolParam

from ..upstreams.openai_answers import tool_call_fragments
from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .anthropic_client import post_raw, sse_events
from .conftest import make_client, new_request_id
from .gateway import MASTER_KEY, Gateway, running_gateway, write_config
from .test_guardrails import CARD, EMAIL, guarded_config

ARGUMENTS = json.dumps({"card": CARD, "note": "ok"})
TOOLS: list[ChatCompletionFunctionToolParam] = [
    {"type": "function", "function": {"name": "pay", "parameters": {"type": "object"}}}
]


@pytest.fixture(scope="module")
def gw(
    upstream: MockUpstream, refused: RefusedPort, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("guard-streams")
    config = guarded_config(upstream, refused)
    path = write_config(config, workdir / "gatecore.yaml")
    with running_gateway(["--config", str(path)], workdir, config=config) as gateway:
        yield gateway


def test_the_card_really_is_split() -> None:
    fragments = tool_call_fragments(ARGUMENTS)
    assert not any(CARD in f for f in fragments) and any(CARD[:4] in f for f in fragments)


def test_chat_stream_tool_arguments_redacted(gw: Gateway, upstream: MockUpstream) -> None:
    rid = new_request_id()
    with make_client(gw) as client:
        stream = client.chat.completions.create(
            model="m-pii",
            messages=[{"role": "user", "content": "pay"}],
            tools=TOOLS,
            stream=True,
            extra_headers={"x-request-id": rid},
            extra_body={"mock": {"tool_calls": [{"id": "call_1", "name": "pay", "arguments": ARGUMENTS}]}},
        )
        with stream:
            chunks = list(stream)
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert calls[0].id == "call_1" and calls[0].function is not None and calls[0].function.name == "pay"
    arguments = "".join((tc.function.arguments or "") if tc.function else "" for tc in calls)
    assert json.loads(arguments) == {"card": "[CREDIT_CARD]", "note": "ok"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert CARD not in str([c.model_dump() for c in chunks])


def test_messages_stream_tool_input_redacted(gw: Gateway) -> None:
    body = {
        "model": "m-pii",
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "pay"}],
        "tools": [{"name": "pay", "input_schema": {"type": "object"}}],
        "mock": {"tool_calls": [{"id": "call_1", "name": "pay", "arguments": ARGUMENTS}]},
    }
    status, _, raw = post_raw(gw, body)
    assert status == 200 and CARD not in raw.decode()
    events = sse_events(raw)
    start = next(
        d for n, d in events if n == "content_block_start" and d["content_block"]["type"] == "tool_use"
    )
    assert start["content_block"]["name"] == "pay"
    partial = "".join(
        d["delta"]["partial_json"]
        for n, d in events
        if n == "content_block_delta" and "partial_json" in d["delta"]
    )
    assert json.loads(partial) == {"card": "[CREDIT_CARD]", "note": "ok"}


def test_responses_stream_tool_arguments_redacted(gw: Gateway) -> None:
    body = {
        "model": "m-pii",
        "input": "pay",
        "stream": True,
        "tools": [{"type": "function", "name": "pay", "parameters": {"type": "object"}}],
        "mock": {"tool_calls": [{"id": "call_1", "name": "pay", "arguments": ARGUMENTS}]},
    }
    status, _, raw = post_raw(gw, body, {"authorization": f"Bearer {MASTER_KEY}"}, path="/v1/responses")
    assert status == 200 and CARD not in raw.decode()
    events = sse_events(raw)
    deltas = "".join(d["delta"] for n, d in events if n == "response.function_call_arguments.delta")
    assert json.loads(deltas) == {"card": "[CREDIT_CARD]", "note": "ok"}
    done = next(d for n, d in events if n == "response.function_call_arguments.done")
    assert json.loads(done["arguments"]) == {"card": "[CREDIT_CARD]", "note": "ok"}


def test_tokens_restored_in_streamed_arguments(gw: Gateway, upstream: MockUpstream) -> None:
    rid = new_request_id()
    # The model calls a tool with the token it was given: the client gets the value back, in JSON.
    token_args = json.dumps({"to": "<EMAIL_1>", "cc": "<EMAIL_1>"})
    with make_client(gw) as client:
        stream = client.chat.completions.create(
            model="m-vault",
            messages=[{"role": "user", "content": f"mail {EMAIL}"}],
            tools=TOOLS,
            stream=True,
            extra_headers={"x-request-id": rid},
            extra_body={"mock": {"tool_calls": [{"id": "c", "name": "pay", "arguments": token_args}]}},
        )
        with stream:
            chunks = list(stream)
    assert upstream.wait_for(rid).body_json["messages"][0]["content"] == "mail <EMAIL_1>"
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    arguments = "".join((tc.function.arguments or "") if tc.function else "" for tc in calls)
    assert json.loads(arguments) == {"to": EMAIL, "cc": EMAIL}


def test_reasoning_deltas_redacted(gw: Gateway) -> None:
    thinking = f"The user wrote from {EMAIL}; I should not repeat {EMAIL} anywhere in my answer."
    with make_client(gw) as client:
        stream = client.chat.completions.create(
            model="m-pii",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            extra_body={"mock": {"reasoning": thinking, "content": "Hello there."}},
        )
        with stream:
            chunks = [c.model_dump() for c in stream]
    reasoning = "".join(
        c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks if c["choices"]
    )
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert reasoning == thinking.replace(EMAIL, "[EMAIL]") and content == "Hello there."
    assert EMAIL not in str(chunks)


def test_whole_answer_reasoning_and_arguments(gw: Gateway) -> None:
    steer: dict[str, Any] = {
        "reasoning": f"mail {EMAIL}",
        "tool_calls": [{"id": "c", "name": "pay", "arguments": ARGUMENTS}],
    }
    with make_client(gw) as client:
        answer = client.chat.completions.create(
            model="m-pii",
            messages=[{"role": "user", "content": "hi"}],
            tools=TOOLS,
            extra_body={"mock": steer},
        )
    message = answer.choices[0].message.model_dump()
    assert message["reasoning_content"] == "mail [EMAIL]"
    assert json.loads(message["tool_calls"][0]["function"]["arguments"])["card"] == "[CREDIT_CARD]"
