"""The `cohere` provider (v2 chat, SSE events) end to end with the openai SDK: the shared conformance
cases through this table."""

from __future__ import annotations

from typing import Any

from ...upstreams.cohere_mock import CohereMock
from ...upstreams.mock_server import RecordedRequest
from . import conformance as cf
from .harness import Setup
from .translated import PLAIN_TOOLS, TURNS

MODEL = "command"
KEY = "co-secret-e2e-7d1e"
USER: list[Any] = [{"role": "user", "content": "hello there"}]
IMAGE_PARTS: list[Any] = [
    {"type": "text", "text": "what is this"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
]


def _answered_usage(sent: RecordedRequest) -> cf.Tokens:
    tokens = sent.response_json["usage"]["tokens"]
    return cf.Tokens(prompt=tokens["input_tokens"], completion=tokens["output_tokens"])


SETUP = Setup(
    mock=lambda: CohereMock(KEY),
    providers=lambda mock: [
        {"name": "co", "kind": "cohere", "base_url": mock.base_url, "api_key": "${E2E_COHERE_KEY}"}
    ],
    models={MODEL: ("co", "command-a-03-2025")},
    secrets=(KEY,),
    env={"E2E_COHERE_KEY": KEY},
    # command-a-03-2025 takes no images in the shipped model table; these tests check how images translate.
    model_options={"capabilities": {"vision": True}},
)


SUITE = cf.Suite(
    chat={
        "multi-turn-with-system": cf.Exchange(
            model=MODEL,
            messages=TURNS,
            reply="mock: how are you",
            usage=_answered_usage,
            sent=cf.Sent(
                path="/v2/chat", body={"model": "command-a-03-2025", "stream": False, "messages": TURNS}
            ),
        )
    },
    stream={
        MODEL: cf.Exchange(
            model=MODEL,
            reply="mock: hello there",
            usage=cf.Tokens(completion=3),
            sent=cf.Sent(body={"stream": True}),
        )
    },
    finish_reasons={
        reason: cf.Finish(cf.scripted(MODEL, finish=reason), finish)
        for reason, finish in [("MAX_TOKENS", "length"), ("STOP_SEQUENCE", "stop")]
    },
    upstream_errors={
        str(status): cf.UpstreamError(
            cf.scripted(MODEL, status=status, error="too many tokens"),
            status,
            {"message": "too many tokens", "type": otype},
        )
        for status, otype in [(400, "invalid_request_error"), (429, "rate_limit_error"), (500, "api_error")]
    },
    broken_streams={
        "bad_json": cf.BrokenStream(cf.scripted(MODEL, corrupt="bad_json"), "not a JSON object"),
        "no_end": cf.BrokenStream(cf.scripted(MODEL, corrupt="no_end"), "message-end"),
        "error_event": cf.BrokenStream(cf.scripted(MODEL, corrupt="error_event"), "internal server error"),
        "truncated": cf.BrokenStream(cf.scripted(MODEL, corrupt="truncated"), "middle of an event"),
        "cut": cf.BrokenStream(cf.scripted(MODEL, cut_after=2), "closed the connection"),
        "json-body": cf.BrokenStream(
            cf.scripted(MODEL, content_type="application/json", corrupt="json_body"), "event stream"
        ),
    },
    rejected={
        "named-tool_choice": cf.Rejected(
            MODEL,
            {"tool_choice": {"type": "function", "function": {"name": "get_time"}}, "tools": PLAIN_TOOLS},
            "tool_choice",
        ),
        "n": cf.Rejected(MODEL, {"n": 2}, "n"),
        "logit_bias": cf.Rejected(MODEL, {"logit_bias": {"1": 2}}, "logit_bias"),
    },
    translations={
        "sampling": cf.Translation(
            MODEL,
            {
                "messages": USER,
                "temperature": 0.4,
                "top_p": 0.7,
                "max_tokens": 50,
                "stop": ["x", "y"],
                "seed": 3,
                "frequency_penalty": 0.1,
                "presence_penalty": 0.2,
                "extra_body": {"top_k": 5},
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "s", "schema": {"type": "object"}},
                },
            },
            cf.Sent(
                body={
                    "temperature": 0.4,
                    "p": 0.7,
                    "k": 5,
                    "max_tokens": 50,
                    "stop_sequences": ["x", "y"],
                    "seed": 3,
                    "frequency_penalty": 0.1,
                    "presence_penalty": 0.2,
                    "response_format": {"type": "json_object", "json_schema": {"type": "object"}},
                }
            ),
        ),
        "tool-round-trip": cf.Translation(
            MODEL,
            {
                "tools": PLAIN_TOOLS,
                "messages": [
                    {"role": "user", "content": "weather?"},
                    {
                        "role": "assistant",
                        "content": "I will look it up.",
                        "tool_calls": [
                            {
                                "id": "call_9",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "call_9", "content": "sunny"},
                ],
            },
            cf.Sent(
                body={
                    "messages": [
                        {"role": "user", "content": "weather?"},
                        {
                            "role": "assistant",
                            "tool_plan": "I will look it up.",
                            "tool_calls": [
                                {
                                    "id": "call_9",
                                    "type": "function",
                                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                                }
                            ],
                        },
                        {"role": "tool", "tool_call_id": "call_9", "content": "sunny"},
                    ]
                }
            ),
        ),
        "image": cf.Translation(
            MODEL,
            {"messages": [{"role": "user", "content": IMAGE_PARTS}]},
            cf.Sent(body={"messages": [{"role": "user", "content": IMAGE_PARTS}]}),
        ),
    },
    tool_calls={
        "two-tools": cf.ToolCalls(
            cf.scripted(MODEL, tool_calls=[("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]),
            {"messages": USER, "tools": PLAIN_TOOLS, "tool_choice": "required"},
            [("call_0", "get_weather", {"city": "Paris"}), ("call_1", "get_time", {"tz": "CET"})],
            cf.Sent(body={"tools": PLAIN_TOOLS, "tool_choice": "REQUIRED"}),
            text="I will call the tools.",  # the tool plan
        )
    },
)
globals().update(SUITE.tests())
