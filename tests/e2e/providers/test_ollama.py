"""The `ollama` provider (native /api/chat, NDJSON streams) end to end with the openai SDK: the shared
conformance cases through this table, then what only Ollama does."""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
import pytest

from ...upstreams.mock_server import RecordedRequest
from ...upstreams.ollama_mock import OllamaMock
from ..conftest import new_request_id
from . import conformance as cf
from .harness import Setup, chat
from .translated import PLAIN_TOOLS, REMOTE_IMAGE, TURNS

MODEL = "llama"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake-image").decode()
X: list[Any] = [{"role": "user", "content": "x"}]


def _answered_usage(sent: RecordedRequest) -> cf.Tokens:
    return cf.Tokens(
        prompt=sent.response_json["prompt_eval_count"], completion=sent.response_json["eval_count"]
    )


def _streamed_usage(sent: RecordedRequest) -> cf.Tokens:
    final = json.loads(sent.events[-1])
    return cf.Tokens(prompt=final["prompt_eval_count"], completion=final["eval_count"])


SETUP = Setup(
    mock=OllamaMock,
    providers=lambda mock: [{"name": "local-ollama", "kind": "ollama", "base_url": mock.base_url}],
    models={MODEL: ("local-ollama", "llama3.2:3b")},
    # llama3.2:3b is text-only in the shipped model table; these tests check how images translate.
    model_options={"capabilities": {"vision": True}},
)


SUITE = cf.Suite(
    chat={
        "multi-turn-with-system": cf.Exchange(
            model=MODEL,
            messages=TURNS,
            reply="mock: how are you",
            usage=_answered_usage,
            sent=cf.Sent(path="/api/chat", body={"model": "llama3.2:3b", "stream": False, "messages": TURNS}),
        )
    },
    stream={
        MODEL: cf.Exchange(
            model=MODEL,
            messages=[{"role": "user", "content": "stream me"}],
            reply="mock: stream me",
            usage=_streamed_usage,
            sent=cf.Sent(headers={"content-type": "application/json"}, body={"stream": True}),
        )
    },
    finish_reasons={"length": cf.Finish(cf.scripted(MODEL, finish="length"), "length")},
    upstream_errors={
        str(status): cf.UpstreamError(
            cf.scripted(MODEL, status=status, error={"error": "model 'llama3.2:3b' not found"}),
            status,
            {"message": "model 'llama3.2:3b' not found", "type": otype},
        )
        for status, otype in [(404, "not_found_error"), (500, "api_error")]
    },
    broken_streams={
        "bad_json": cf.BrokenStream(cf.scripted(MODEL, corrupt="bad_json"), "not a JSON object"),
        "no_done": cf.BrokenStream(cf.scripted(MODEL, corrupt="no_done"), "final"),
        "error_line": cf.BrokenStream(cf.scripted(MODEL, corrupt="error_line"), "error was encountered"),
        "cut": cf.BrokenStream(cf.scripted(MODEL, cut_after=2), "closed the connection"),
        "html": cf.BrokenStream(
            cf.scripted(MODEL, corrupt="html", content_type="text/html"), "not a JSON object"
        ),
    },
    rejected={
        "image-url": cf.Rejected(
            MODEL,
            REMOTE_IMAGE,
            "messages[0].content[0].image_url",
        ),
        "tool_choice": cf.Rejected(MODEL, {"tool_choice": "required", "tools": PLAIN_TOOLS}, "tool_choice"),
        "n": cf.Rejected(MODEL, {"n": 2}, "n"),
        "logprobs": cf.Rejected(MODEL, {"logprobs": True}, "logprobs"),
    },
    translations={
        "sampling-to-options": cf.Translation(
            MODEL,
            {
                "messages": X,
                "temperature": 0.3,
                "top_p": 0.9,
                "max_tokens": 17,
                "stop": ["END"],
                "seed": 7,
                "response_format": {"type": "json_object"},
                "extra_body": {"top_k": 40},
            },
            cf.Sent(
                body={
                    "options": {
                        "temperature": 0.3,
                        "top_p": 0.9,
                        "top_k": 40,
                        "seed": 7,
                        "num_predict": 17,
                        "stop": ["END"],
                    },
                    "format": "json",
                }
            ),
        ),
        "json-schema-to-format": cf.Translation(
            MODEL,
            {
                "messages": X,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "s",
                        "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
                    },
                },
            },
            cf.Sent(body={"format": {"type": "object", "properties": {"a": {"type": "string"}}}}),
        ),
        "image-as-base64": cf.Translation(
            MODEL,
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "what is this"},
                            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                        ],
                    }
                ]
            },
            cf.Sent(body={"messages": [{"role": "user", "content": "what is this", "images": [PNG]}]}),
        ),
    },
    tool_calls={
        "two-tools": cf.ToolCalls(
            cf.scripted(MODEL, tool_calls=[("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]),
            {"messages": [{"role": "user", "content": "weather and time?"}], "tools": PLAIN_TOOLS},
            [(None, "get_weather", {"city": "Paris"}), (None, "get_time", {"tz": "CET"})],
            cf.Sent(body={"tools": PLAIN_TOOLS}),
        )
    },
)
globals().update(SUITE.tests())


def test_tool_round_trip_reaches_ollama_format(client: openai.OpenAI, mock: OllamaMock) -> None:
    """Ollama's calls have no ids: results sent back under the gateway's ids name the function."""
    rid = new_request_id()
    mock.script(rid, tool_calls=[("get_weather", {"city": "Oslo"})])
    resp = chat(client,
        model=MODEL, messages=[{"role": "user", "content": "weather?"}], tools=PLAIN_TOOLS,
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    calls = resp.choices[0].message.tool_calls
    assert calls is not None and resp.choices[0].finish_reason == "tool_calls"
    first = calls[0]
    assert first.type == "function"
    assert first.function.name == "get_weather" and json.loads(first.function.arguments) == {"city": "Oslo"}
    rid2 = new_request_id()
    chat(
        client,
        model=MODEL,
        messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None, "tool_calls": [c.model_dump() for c in calls]},
            {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"},
        ],
        tools=PLAIN_TOOLS,
        extra_headers={"x-request-id": rid2},
    )
    messages = mock.wait_for(rid2).body_json["messages"]
    assert messages[1] == {
        "role": "assistant", "content": "",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
    }  # fmt: skip
    assert messages[2] == {"role": "tool", "content": "sunny", "tool_name": "get_weather"}


def test_completions_endpoint_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model=MODEL, prompt="x")
    assert "completions" in info.value.message
