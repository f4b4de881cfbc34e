"""OpenAI clients served by a Gemini upstream (openai SDK → gatecore → tests/upstreams/gemini_mock.py):
the shared conformance cases through this table, then what only Gemini does."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from ...upstreams.gemini_mock import API_KEY, STATUSES, GeminiMock
from ...upstreams.mock_server import RecordedRequest
from ..conftest import new_request_id
from . import conformance as cf
from .harness import Setup
from .translated import IMAGE_MESSAGES, IMAGE_URL, PNG_B64, WEATHER_TOOLS, collect_tool_calls

MODEL = "gem/gemini-mock"
USER: list[Any] = [{"role": "user", "content": "hello there"}]
OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
}
JSON_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": ["integer", "null"]}},
    "required": ["answer"],
    "additionalProperties": False,
}


def _declares_weather_tool(sent: RecordedRequest) -> None:
    declaration = sent.body_json["tools"][0]["functionDeclarations"][0]
    assert declaration["name"] == "get_weather" and declaration["parameters"]["required"] == ["city"]


SETUP = Setup(
    mock=GeminiMock,
    providers=lambda mock: [
        {"name": "google", "kind": "gemini", "base_url": mock.origin, "api_key": API_KEY}
    ],
    models={"gem/*": ("google", "*")},
    secrets=(API_KEY,),
)


SUITE = cf.Suite(
    chat={
        MODEL: cf.Exchange(
            model=MODEL,
            reply="mock: hello there",
            usage=cf.Tokens(prompt=2, completion=3),
            sent=cf.Sent(
                path="/v1beta/models/gemini-mock:generateContent",
                headers={"x-goog-api-key": API_KEY},
                no_headers=["authorization"],
                body={"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]},
                whole_body=True,
            ),
        )
    },
    stream={
        MODEL: cf.Exchange(
            model=MODEL,
            reply="mock: hello there",
            usage=cf.Tokens(completion=3),
            sent=cf.Sent(path="/v1beta/models/gemini-mock:streamGenerateContent", query="alt=sse"),
        )
    },
    finish_reasons={
        reason: cf.Finish(cf.named(f"{MODEL}~reason={reason}"), finish)
        for reason, finish in [
            ("STOP", "stop"),
            ("MAX_TOKENS", "length"),
            ("SAFETY", "content_filter"),
            ("RECITATION", "content_filter"),
        ]
    },
    upstream_errors={
        str(status): cf.UpstreamError(
            cf.named(f"{MODEL}~status={status}"),
            status,
            {"type": otype, "message": f"mock {STATUSES[status]} ({status})"},
        )
        for status, otype in OPENAI_TYPES.items()
    },
    broken_streams={
        steer: cf.BrokenStream(
            cf.named(f"{MODEL}~{steer}"), "overloaded" if steer == "stream_error" else None
        )
        for steer in [
            "stream_error",
            "badjson=1",
            "no_finish",
            "cut=2",
            "truncate~no_finish",
            "ctype=application/json",
            "ctype=text/html",
        ]
    },
    rejected={
        field: cf.Rejected(MODEL, {field: value}, field)
        for field, value in [("n", 3), ("logprobs", True), ("logit_bias", {"1": 2})]
    }
    | {
        "unknown-tool-call": cf.Rejected(
            MODEL,
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "tool", "tool_call_id": "nope", "content": "r"},
                ]
            },
            "messages[1].tool_call_id",
        )
    },
    translations={
        "system-and-turns": cf.Translation(
            MODEL,
            {
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "first"},
                    {"role": "assistant", "content": "ok"},
                    {"role": "user", "content": "second"},
                    {"role": "user", "content": [{"type": "text", "text": "third"}]},
                ]
            },
            cf.Sent(
                body={
                    "systemInstruction": {"parts": [{"text": "You are terse."}]},
                    "contents": [
                        {"role": "user", "parts": [{"text": "first"}]},
                        {"role": "model", "parts": [{"text": "ok"}]},
                        {"role": "user", "parts": [{"text": "second"}, {"text": "third"}]},
                    ],
                }
            ),
            reply="mock: second third",
        ),
        "images": cf.Translation(
            MODEL,
            {"messages": IMAGE_MESSAGES},
            cf.Sent(
                body={
                    "contents": [
                        {
                            "role": "user",
                            "parts": [
                                {"text": "what is this"},
                                {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
                                {"fileData": {"mimeType": "image/png", "fileUri": IMAGE_URL}},
                            ],
                        }
                    ]
                }
            ),
        ),
        "json-schema-and-sampling": cf.Translation(
            MODEL,
            {
                "messages": USER,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "a", "schema": JSON_SCHEMA, "strict": True},
                },
                "temperature": 0.2,
                "top_p": 0.8,
                "max_tokens": 50,
                "stop": ["END"],
                "seed": 9,
            },
            cf.Sent(
                body={
                    "generationConfig": {
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
                }
            ),
            reply='{"answer": 42}',
        ),
    },
    tool_calls={
        "two-tools": cf.ToolCalls(
            cf.named(f"{MODEL}~tools=2"),
            {
                "messages": [{"role": "user", "content": "weather and time"}],
                "tools": WEATHER_TOOLS,
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            },
            [(None, "get_weather", {"n": 0, "city": "Paris"}), (None, "get_time", {"n": 1, "city": "Tokyo"})],
            cf.Sent(
                body={
                    "toolConfig": {
                        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
                    }
                },
                check=_declares_weather_tool,
            ),
        )
    },
)
globals().update(SUITE.tests())


def test_tool_results_round_trip_with_the_gateways_call_ids(client: openai.OpenAI, mock: GeminiMock) -> None:
    """Gemini's calls have no ids: the gateway makes them up, and maps results sent back under them to
    functionResponse parts naming the function."""
    with client.chat.completions.create(
        model=f"{MODEL}~tools=2",
        messages=[{"role": "user", "content": "weather and time"}],
        tools=WEATHER_TOOLS,
        stream=True,
    ) as stream:
        calls = collect_tool_calls(list(stream))
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
        model=MODEL, messages=messages, tools=WEATHER_TOOLS, extra_headers={"x-request-id": rid}
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
    content = resp.choices[0].message.content
    assert content is not None and content.startswith("results: ")


def test_two_tools_non_stream(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model=f"{MODEL}~tools=2", messages=USER, tools=WEATHER_TOOLS, tool_choice="required"
    )
    assert resp.choices[0].finish_reason == "tool_calls"
    calls = [
        t
        for t in resp.choices[0].message.tool_calls or []
        if isinstance(t, ChatCompletionMessageFunctionToolCall)
    ]
    assert [(t.id, t.function.name) for t in calls] == [("call_0", "get_weather"), ("call_1", "get_time")]


@pytest.mark.parametrize("stream", [False, True])
def test_usage_with_cached_and_thought_tokens(client: openai.OpenAI, stream: bool) -> None:
    kwargs: dict[str, Any] = {"model": f"{MODEL}~cache=5~thoughts=7", "messages": USER}
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


def test_reasoning_effort_becomes_a_thinking_budget(client: openai.OpenAI, mock: GeminiMock) -> None:
    rid = new_request_id()
    client.chat.completions.create(
        model=MODEL, messages=USER, reasoning_effort="low", extra_headers={"x-request-id": rid}
    )
    sent = mock.wait_for(rid)
    assert sent.body_json["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 1024}
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL, messages=USER, extra_body={"reasoning_effort": "extreme"})
    error = raised.value.response.json()["error"]
    assert (error["param"], error["code"]) == ("reasoning_effort", "invalid_value")
