"""Valid stream answers of unusual shape from the OpenAI mock: a whole stream in one write (with or
without ``[DONE]``), and a stream request answered with plain JSON."""

from __future__ import annotations

import http.client
import json
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionStreamOptionsParam

from ...upstreams.openai_mock import MockUpstream
from .. import raw_http
from ..conftest import new_request_id
from ..gateway import Gateway
from .shared import CHAT, auth, chat_body, stream_raw, user


@pytest.mark.parametrize("no_done", [False, True], ids=["done", "no-done"])
@pytest.mark.parametrize("include_usage", [False, True], ids=["usage-hidden", "usage-asked"])
def test_whole_stream_in_one_write_sdk(
    client: openai.OpenAI, upstream: MockUpstream, include_usage: bool, no_done: bool
) -> None:
    rid = new_request_id()
    options: ChatCompletionStreamOptionsParam | openai.Omit = (
        {"include_usage": True} if include_usage else openai.omit
    )
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=user("all at once"),
        stream=True,
        stream_options=options,
        extra_body={"mock": {"all_at_once": True, "chunks": 12, "no_done": no_done}},
        extra_headers={"x-request-id": rid},
    )
    with stream:
        chunks = list(stream)
    sent = upstream.wait_for(rid)
    assert sent.body_json["stream_options"] == {"include_usage": True}, "gatecore asks for usage"
    assert (sent.events[-1] == b"[DONE]") is not no_done
    assert {c.model for c in chunks} == {"gpt-test"}
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert deltas == [f"tok{i} " for i in range(12)]
    assert chunks[0].choices[0].delta.role == "assistant"
    usage_chunks = [c for c in chunks if not c.choices]
    if include_usage:
        assert len(usage_chunks) == 1
        assert usage_chunks[0] is chunks[-1]
        assert usage_chunks[0].usage is not None
        assert usage_chunks[0].usage.completion_tokens == 12
        assert chunks[-2].choices[0].finish_reason == "stop"
    else:
        assert not usage_chunks, "the usage chunk gatecore asked for is hidden"
        assert all(c.usage is None for c in chunks)
        assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("no_done", [False, True], ids=["done", "no-done"])
@pytest.mark.parametrize("all_at_once", [False, True], ids=["chunked", "one-write"])
def test_stream_events_raw(
    gateway: Gateway, upstream: MockUpstream, all_at_once: bool, no_done: bool
) -> None:
    """On the wire: every event relayed in order with the client's model name, ``[DONE]`` relayed
    when the upstream sent it, and the body ends either way."""
    rid = new_request_id()
    mock = {"all_at_once": all_at_once, "no_done": no_done, "chunks": 5}
    result = stream_raw(gateway, chat_body("gpt-test", stream=True, mock=mock), rid)
    assert result.status == 200
    assert result.ended, f"the stream did not end (waited {result.elapsed:.1f} s)"
    sent = upstream.wait_for(rid)
    expected = [e for e in sent.event_objects() if e["choices"]]  # the usage chunk is hidden
    assert (result.data[-1] == b"[DONE]") is not no_done
    events = [json.loads(d) for d in result.data if d != b"[DONE]"]
    assert [e["model"] for e in events] == ["gpt-test"] * len(expected)

    def comparable(event: dict[str, Any]) -> dict[str, Any]:
        # `"usage": null` rides along on every chunk of a stream that asked for usage.
        return {k: v for k, v in event.items() if k not in ("model", "usage")}

    assert [comparable(e) for e in events] == [comparable(e) for e in expected]


def test_whole_stream_in_one_write_headers(gateway: Gateway) -> None:
    rid = new_request_id()
    headers = [*auth(), ("x-request-id", rid)]
    body = json.dumps(chat_body("gpt-test", stream=True, mock={"all_at_once": True})).encode()
    with raw_http.RawStream(gateway.port, CHAT, body, headers, timeout=10) as stream:
        assert stream.status == 200
        assert (stream.header("content-type") or "").startswith("text/event-stream")
        assert stream.header("x-gatecore-model") == "up/upstream-model-1"
        assert stream.header("x-request-id") == rid
        data = [e.data for e in stream.events()]
    assert data[-1] == b"[DONE]"
    assert (
        "".join(json.loads(d)["choices"][0]["delta"].get("content") or "" for d in data[:-1]) == "mock: edge"
    )


def test_stream_request_answered_with_json(gateway: Gateway, upstream: MockUpstream) -> None:
    rid = new_request_id()
    body = chat_body("gpt-test", "json please", stream=True, mock={"no_stream": True})
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        conn.request("POST", CHAT, json.dumps(body).encode(), {**dict(auth()), "x-request-id": rid})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    assert resp.status == 200, data[:300]
    assert (resp.getheader("content-type") or "").startswith("application/json")
    assert resp.getheader("x-gatecore-model") == "up/upstream-model-1"
    obj = json.loads(data)
    assert obj["object"] == "chat.completion"
    assert obj["model"] == "gpt-test"
    assert obj["choices"][0]["message"]["content"] == "mock: json please"
    sent = upstream.wait_for(rid)
    assert sent.body_json["stream"] is True
    assert sent.body_json["model"] == "upstream-model-1"
    assert obj == {**sent.response_json, "model": "gpt-test"}
