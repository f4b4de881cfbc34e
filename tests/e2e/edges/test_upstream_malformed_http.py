"""Upstreams that speak broken HTTP (502, or an error event mid-stream, and the connection dropped) or
odd but valid HTTP (a body ended by the close, a head in pieces), from tests/upstreams/broken_upstream.py."""

from __future__ import annotations

import json
import time

import openai
import pytest

from ...upstreams.broken_upstream import INVALID_HEADS, ODD_JSON, BrokenUpstream
from .. import raw_http
from ..conftest import make_client, new_request_id
from ..gateway import MASTER_KEY, Gateway
from .shared import CHAT, assert_error, chat_body, stream_raw, user


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("behaviour", INVALID_HEADS)
def test_broken_http_is_502(
    edges_gateway: Gateway, broken: BrokenUpstream, behaviour: str, stream: bool
) -> None:
    rid = new_request_id()
    resp = raw_http.post_json(
        edges_gateway.port, CHAT, chat_body(f"broken-{behaviour}", stream=stream), MASTER_KEY,
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    error = assert_error(resp, 502, "upstream_protocol_error")
    assert error["type"] == "upstream_error"
    broken.wait_for(rid)
    assert raw_http.post_json(edges_gateway.port, CHAT, chat_body("gpt-test"), MASTER_KEY).status == 200


def test_invalid_chunk_in_whole_body_is_502(edges_gateway: Gateway, broken: BrokenUpstream) -> None:
    rid = new_request_id()
    started = time.monotonic()
    resp = raw_http.post_json(
        edges_gateway.port, CHAT, chat_body("broken-bad-chunk-json"), MASTER_KEY,
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    assert_error(resp, 502, "upstream_protocol_error")
    assert time.monotonic() - started < 5, "answered at once, not after a timeout"
    assert broken.wait_for(rid).peer_closed.wait(5), "the gateway dropped the broken upstream connection"


def test_invalid_chunk_mid_stream_ends_with_error_event(
    edges_gateway: Gateway, broken: BrokenUpstream
) -> None:
    rid = new_request_id()
    result = stream_raw(edges_gateway, chat_body("broken-bad-chunk-sse", stream=True), rid)
    assert result.status == 200
    assert result.ended, (
        f"the stream stayed open after the broken chunk (waited {result.elapsed:.1f} s; "
        f"events: {result.data!r})"
    )
    assert result.elapsed < 5
    assert len(result.events) == 2, result.data
    first = json.loads(result.events[0].data)
    assert first["model"] == "broken-bad-chunk-sse"
    assert first["choices"][0]["delta"]["content"] == "first"
    error = json.loads(result.events[1].data)["error"]
    assert error["code"] == "upstream_stream_error"
    assert {"message", "type", "param", "code"} <= set(error)
    assert broken.wait_for(rid).peer_closed.wait(5), "the gateway dropped the broken upstream connection"


def test_invalid_chunk_mid_stream_sdk(edges_gateway: Gateway) -> None:
    started = time.monotonic()
    seen: list[str] = []
    with make_client(edges_gateway) as c, pytest.raises(openai.APIError) as info:
        stream = c.chat.completions.create(model="broken-bad-chunk-sse", messages=user("x"), stream=True)
        with stream:
            seen.extend(chunk.choices[0].delta.content or "" for chunk in stream)
    assert seen == ["first"]
    assert "upstream" in info.value.message.lower()
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("name", ["eof-json", "split-head"])
def test_odd_but_valid_whole_body(edges_gateway: Gateway, broken: BrokenUpstream, name: str) -> None:
    rid = new_request_id()
    resp = raw_http.post_json(
        edges_gateway.port, CHAT, chat_body(f"odd-{name}"), MASTER_KEY, extra_headers={"x-request-id": rid}
    )
    assert resp.status == 200, resp.body[:300]
    obj = resp.json()
    assert obj == {**json.loads(ODD_JSON), "model": f"odd-{name}"}
    broken.wait_for(rid)


def test_stream_body_until_eof(edges_gateway: Gateway, broken: BrokenUpstream) -> None:
    rid = new_request_id()
    result = stream_raw(edges_gateway, chat_body("odd-eof-sse", stream=True), rid)
    assert result.status == 200
    assert result.ended
    assert result.data[-1] == b"[DONE]"
    events = [json.loads(d) for d in result.data[:-1]]
    assert all("error" not in e for e in events), events
    assert {e["model"] for e in events} == {"odd-eof-sse"}
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events) == "until eof"
    broken.wait_for(rid)
