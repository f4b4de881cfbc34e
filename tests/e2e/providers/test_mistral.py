"""The `mistral` provider (OpenAI-like, with field renames and its own error shapes) end to end with the
openai SDK: the shared conformance cases through this table, then what only Mistral does."""

from __future__ import annotations

from typing import Any

from ...upstreams.mistral_mock import API_KEY, MistralMock
from . import conformance as cf
from .harness import Setup
from .translated import WEATHER_TOOLS, post

MODEL = "mi/mistral-small-latest"
USER: list[Any] = [{"role": "user", "content": "hello there"}]

SETUP = Setup(
    mock=MistralMock,
    providers=lambda mock: [
        {"name": "mi", "kind": "mistral", "base_url": mock.origin + "/v1", "api_key": API_KEY}
    ],
    models={"mi/*": ("mi", "*")},
    secrets=(API_KEY,),
)


SUITE = cf.Suite(
    stream={
        MODEL: cf.Exchange(
            model=MODEL,
            reply="mock: hello there",
            usage=cf.Tokens(completion=3),
            sent=cf.Sent(no_body=["stream_options"]),
            usage_chunk_alone=False,
        )
    },
    upstream_errors={
        "429": cf.UpstreamError(
            cf.named("mi/m~status=429"),
            429,
            {"message": "mock mistral 429", "type": "mock_error", "param": None, "code": "429"},
        )
    },
    rejected={"logprobs": cf.Rejected("mi/m", {"logprobs": True}, "logprobs")},
    translations={
        "field-mapping": cf.Translation(
            MODEL,
            {
                "messages": USER,
                "seed": 5,
                "max_completion_tokens": 40,
                "user": "u1",
                "tools": WEATHER_TOOLS,
                "tool_choice": "required",
            },
            cf.Sent(
                body={
                    "random_seed": 5,
                    "max_tokens": 40,
                    "tool_choice": "any",
                    "model": "mistral-small-latest",
                },
                no_body=["seed", "max_completion_tokens", "user"],
            ),
            reply="mock: hello there",
        )
    },
)
globals().update(SUITE.tests())


def test_unknown_field_is_mistrals_422(target: cf.Target) -> None:
    resp = post(target.gw, {"model": "mi/m", "messages": USER, "safe_promptx": True})
    assert resp.status == 422
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and "safe_promptx" in error["message"]
