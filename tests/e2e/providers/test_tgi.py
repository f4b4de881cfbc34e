"""The `tgi` provider (native /generate, a prompt-only engine): chat rendered through the configured
template, /v1/completions natively, streams, errors. The shared conformance cases through this table,
then what only TGI does."""

from __future__ import annotations

import openai

from ...upstreams.mock_server import RecordedRequest
from ...upstreams.tgi_mock import TgiMock
from ..conftest import new_request_id
from . import conformance as cf
from .harness import Setup
from .prompt_engines import CHATML, LLAMA3, USER, rejected

MODEL = "qwen"
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}}


def _answered_usage(sent: RecordedRequest) -> cf.Tokens:
    return cf.Tokens(completion=sent.response_json["details"]["generated_tokens"])


SETUP = Setup(
    mock=TgiMock,
    providers=lambda mock: [
        {"name": "tgi", "kind": "tgi", "base_url": mock.base_url},
        {"name": "tgi-llama", "kind": "tgi", "base_url": mock.base_url, "chat_template": "llama3"},
    ],
    models={MODEL: ("tgi", "tgi"), "llama3": ("tgi-llama", "tgi")},
)


SUITE = cf.Suite(
    chat={
        "chatml": cf.Exchange(
            model=MODEL,
            messages=USER,
            params={"max_tokens": 20, "temperature": 0.5, "top_p": 0.9, "stop": ["<|im_end|>"], "seed": 4},
            reply="mock: <|im_start|>assistant",
            usage=_answered_usage,
            sent=cf.Sent(
                path="/generate",
                body={
                    "inputs": CHATML,
                    "parameters": {
                        "temperature": 0.5,
                        "top_p": 0.9,
                        "seed": 4,
                        "details": True,
                        "max_new_tokens": 20,
                        "stop": ["<|im_end|>"],
                    },
                },
                whole_body=True,
            ),
        )
    },
    stream={
        "llama3-template": cf.Exchange(
            model="llama3",
            messages=USER,
            reply="mock: " + LLAMA3.strip().splitlines()[-1][:40],
            usage=cf.Tokens(prompt=11),  # details.input_length
            sent=cf.Sent(body={"inputs": LLAMA3}),
        )
    },
    finish_reasons={"length": cf.Finish(cf.scripted(MODEL, finish="length"), "length")},
    upstream_errors={
        str(status): cf.UpstreamError(
            cf.scripted(MODEL, status=status, error="Input validation error: too long"),
            status,
            {"message": "Input validation error: too long", "type": otype},
        )
        for status, otype in [
            (422, "invalid_request_error"),
            (429, "rate_limit_error"),
            (424, "invalid_request_error"),
        ]
    },
    broken_streams={
        "bad_json": cf.BrokenStream(cf.scripted(MODEL, corrupt="bad_json"), "not a JSON object"),
        "error_event": cf.BrokenStream(cf.scripted(MODEL, corrupt="error_event"), "mid-stream"),
        "truncated": cf.BrokenStream(cf.scripted(MODEL, corrupt="truncated"), "middle of an event"),
        "cut": cf.BrokenStream(cf.scripted(MODEL, cut_after=1), "closed the connection"),
        "no_end": cf.BrokenStream(cf.scripted(MODEL, corrupt="no_end"), "final event"),
    },
    rejected=rejected(MODEL),
    translations={
        "json-schema-to-grammar": cf.Translation(
            MODEL,
            {
                "messages": USER,
                "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": SCHEMA}},
            },
            cf.Sent(check=lambda sent: _grammar_is(sent, {"type": "json", "value": SCHEMA})),
        )
    },
)
globals().update(SUITE.tests())


def _grammar_is(sent: RecordedRequest, grammar: dict[str, object]) -> None:
    assert sent.body_json["parameters"]["grammar"] == grammar


def test_completions_native(client: openai.OpenAI, mock: TgiMock) -> None:
    rid = new_request_id()
    resp = client.completions.create(
        model=MODEL, prompt="Once upon", max_tokens=5, extra_headers={"x-request-id": rid}
    )
    assert resp.object == "text_completion" and resp.choices[0].text == "mock: Once upon"
    assert mock.wait_for(rid).body_json["inputs"] == "Once upon"


def test_streamed_completions(client: openai.OpenAI) -> None:
    stream = client.completions.create(model=MODEL, prompt="Once upon", stream=True)
    with stream:
        chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "mock: Once upon"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
