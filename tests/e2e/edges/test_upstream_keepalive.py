"""Keep-alive with upstreams that close: ``Connection: close`` answers, and pooled connections the
upstream closes while idle."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import openai
import pytest

from ...upstreams.openai_mock import MockUpstream
from .. import raw_http
from ..conftest import new_request_id
from ..gateway import MASTER_KEY, Gateway
from .shared import CHAT, IDLE_CLOSE_S, chat_body, stream_raw, user


def test_mock_close_knob_sends_connection_close(upstream: MockUpstream) -> None:
    """The knob itself: the mock answers ``Connection: close`` and closes."""
    conn = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=10)
    try:
        body = json.dumps(chat_body("upstream-model-1", mock={"close": True})).encode()
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        assert (resp.getheader("connection") or "").lower() == "close"
    finally:
        conn.close()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_upstream_connection_close_alternating(
    client: openai.OpenAI, upstream: MockUpstream, stream: bool
) -> None:
    """20 requests in a row, every other one answered with ``Connection: close``: all succeed."""
    ports: list[int | None] = []
    for i in range(20):
        rid = new_request_id()
        extra: dict[str, Any] = {"mock": {"close": i % 2 == 0}}
        headers = {"x-request-id": rid}
        if stream:
            chunks = client.chat.completions.create(
                model="gpt-test",
                messages=user(f"ping {i}"),
                stream=True,
                extra_body=extra,
                extra_headers=headers,
            )
            with chunks:
                text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            completion = client.chat.completions.create(
                model="gpt-test", messages=user(f"ping {i}"), extra_body=extra, extra_headers=headers
            )
            text = completion.choices[0].message.content or ""
        assert text == f"mock: ping {i}"
        ports.append(upstream.wait_for(rid).peer_port)
    # Each request after a closed connection came over a new one.
    for i in range(0, 18, 2):
        assert ports[i + 1] != ports[i], f"request {i + 1} reused the connection closed by request {i}"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_upstream_closes_idle_pooled_connection(
    edges_gateway: Gateway, idle_upstream: MockUpstream, stream: bool
) -> None:
    """The upstream closes a pooled connection while it is idle: the next request still gets 200, not
    502 (the stale connection is dropped or the request resent on a new one)."""
    ports: list[int | None] = []
    for i in range(4):
        if i:
            time.sleep(IDLE_CLOSE_S + 0.5)
        rid = new_request_id()
        body = chat_body("idle-test", f"after idle {i}", stream=stream)
        if stream:
            result = stream_raw(edges_gateway, body, rid)
            assert result.status == 200, f"request {i}"
            assert result.ended
            assert result.data[-1] == b"[DONE]"
            assert not any(b'"error"' in d for d in result.data), result.data[-2:]
        else:
            resp = raw_http.post_json(
                edges_gateway.port, CHAT, body, MASTER_KEY, extra_headers={"x-request-id": rid}
            )
            assert resp.status == 200, (i, resp.body[:300])
            assert resp.json()["choices"][0]["message"]["content"] == f"mock: after idle {i}"
        ports.append(idle_upstream.wait_for(rid).peer_port)
    assert len(set(ports)) == len(ports), "the upstream closed each idle connection: no reuse possible"


def test_upstream_keeps_alive_between_quick_requests(
    edges_gateway: Gateway, idle_upstream: MockUpstream
) -> None:
    """Control for the test above: back to back requests do reuse the pooled connection."""
    ports: list[int | None] = []
    for i in range(5):
        rid = new_request_id()
        resp = raw_http.post_json(
            edges_gateway.port, CHAT, chat_body("idle-test", f"quick {i}"), MASTER_KEY,
            extra_headers={"x-request-id": rid},
        )  # fmt: skip
        assert resp.status == 200
        ports.append(idle_upstream.wait_for(rid).peer_port)
    assert len(set(ports)) < len(ports)
