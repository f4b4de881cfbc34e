"""The `triton` provider (the generate extension, a prompt-only engine): chat rendered through ChatML,
streams, errors. The shared conformance cases through this table, then what only Triton does."""

from __future__ import annotations

from ...upstreams.triton_mock import TritonMock
from ..conftest import make_client
from . import conformance as cf
from .harness import Setup
from .prompt_engines import CHATML, USER, rejected

MODEL = "trt"
REPLY = "mock: <|im_start|>assistant"

SETUP = Setup(
    mock=TritonMock,
    providers=lambda mock: [{"name": "triton", "kind": "triton", "base_url": mock.base_url}],
    models={MODEL: ("triton", "ensemble")},
)


SUITE = cf.Suite(
    chat={
        MODEL: cf.Exchange(
            model=MODEL,
            messages=USER,
            params={"max_tokens": 9, "temperature": 0.1, "stop": ["END"]},
            reply=REPLY,
            sent=cf.Sent(
                path="/v2/models/ensemble/generate",
                body={
                    "text_input": CHATML,
                    "stream": False,
                    "max_tokens": 9,
                    "stop_words": ["END"],
                    "parameters": {"temperature": 0.1},
                },
                whole_body=True,
            ),
        )
    },
    stream={
        MODEL: cf.Exchange(
            model=MODEL,
            messages=USER,
            reply=REPLY,
            sent=cf.Sent(path="/v2/models/ensemble/generate_stream", body={"stream": True}),
        )
    },
    upstream_errors={
        "400": cf.UpstreamError(
            cf.scripted(MODEL, status=400, error="unexpected inference input 'foo'"),
            400,
            {"message": "unexpected inference input 'foo'"},
        )
    },
    broken_streams={
        "bad_json": cf.BrokenStream(cf.scripted(MODEL, corrupt="bad_json"), "not a JSON object"),
        "error_event": cf.BrokenStream(cf.scripted(MODEL, corrupt="error_event"), "mid-stream"),
        "truncated": cf.BrokenStream(cf.scripted(MODEL, corrupt="truncated"), "middle of an event"),
        "cut": cf.BrokenStream(cf.scripted(MODEL, cut_after=1), "closed the connection"),
    },
    rejected=rejected(MODEL),
)
globals().update(SUITE.tests())


def test_usage_is_counted_without_the_engine_reporting_it(target: cf.Target) -> None:
    with make_client(target.gw) as client:
        resp = client.chat.completions.create(model=MODEL, messages=USER)
    assert resp.usage is not None and resp.usage.completion_tokens > 0
