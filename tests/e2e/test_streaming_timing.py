"""Streams are relayed event by event as they arrive, and a client that goes away cancels the upstream."""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream
from . import raw_http
from .conftest import make_client, new_request_id
from .gateway import MASTER_KEY, Gateway

# How soon after the client goes away the upstream must see its connection closed.
CANCEL_WITHIN_S = 0.5


def _headers(rid: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json", "x-request-id": rid}


def _chat_body(model: str, mock: dict[str, Any], stream: bool = True) -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": "pace"}], "stream": stream, "mock": mock}
    return json.dumps(body).encode()


@pytest.mark.parametrize("gap_ms", [5, 40])
def test_paced_stream_relayed_as_it_arrives(gateway: Gateway, upstream: MockUpstream, gap_ms: int) -> None:
    chunks = 20
    rid = new_request_id()
    body = _chat_body("gpt-test", {"gap_ms": gap_ms, "chunks": chunks})
    with raw_http.RawStream(gateway.port, "/v1/chat/completions", body, _headers(rid), timeout=20) as stream:
        assert stream.status == 200
        arrivals = list(stream.events())
    sent = upstream.wait_for(rid)
    assert sent.finished.wait(5)

    # Client events: role, `chunks` content deltas, finish, [DONE]; the mock also sent the usage chunk
    # the gateway asked for, after the finish chunk, which the client does not see.
    assert arrivals[-1].data == b"[DONE]"
    objs = [json.loads(a.data) for a in arrivals[:-1]]
    content = [
        (a, o)
        for a, o in zip(arrivals, objs, strict=False)
        if o["choices"] and o["choices"][0]["delta"].get("content")
    ]
    assert "".join(o["choices"][0]["delta"]["content"] for _, o in content) == "".join(
        f"tok{i} " for i in range(chunks)
    )
    assert len(content) == chunks, "every content event arrives as its own event"

    recv_indices = [a.recv_index for a, _ in content]
    assert len(set(recv_indices)) == chunks, f"events arrived merged in one read: {recv_indices}"

    # Content event i is the mock's event i + 1 (event 0 carries the role).
    lags_ms = [(a.at - sent.event_times[i + 1]) * 1000 for i, (a, _) in enumerate(content)]
    assert statistics.median(lags_ms) < 10, f"lags (ms): {lags_ms}"
    assert max(lags_ms) < 50, f"lags (ms): {lags_ms}"
    spread_ms = (content[-1][0].at - content[0][0].at) * 1000
    assert spread_ms >= (chunks - 1) * gap_ms * 0.8, "chunks were held back and released together"


def test_stream_disconnect_cancels_upstream_raw(gateway: Gateway, upstream: MockUpstream) -> None:
    rid = new_request_id()
    body = _chat_body("gpt-slow", {"gap_ms": 100, "chunks": 300})
    stream = raw_http.RawStream(gateway.port, "/v1/chat/completions", body, _headers(rid), timeout=20)
    try:
        assert stream.status == 200
        events = stream.events()
        for _ in range(3):
            next(events)
    finally:
        stream.close()
    closed_at = time.monotonic()
    sent = upstream.wait_for(rid)
    assert sent.disconnected.wait(5), "the upstream connection stayed open after the client left"
    assert sent.disconnected_at is not None
    assert sent.disconnected_at - closed_at < CANCEL_WITHIN_S
    assert len(sent.events) < 3 + 1 + int(CANCEL_WITHIN_S * 10) + 2


def test_stream_disconnect_cancels_upstream_sdk(gateway: Gateway, upstream: MockUpstream) -> None:
    rid = new_request_id()
    with make_client(gateway) as c:
        stream = c.chat.completions.create(
            model="gpt-slow",
            messages=[{"role": "user", "content": "bye"}],
            stream=True,
            extra_body={"mock": {"gap_ms": 100, "chunks": 300}},
            extra_headers={"x-request-id": rid},
        )
        for _ in range(3):
            next(stream)
        stream.close()
        closed_at = time.monotonic()
    sent = upstream.wait_for(rid)
    assert sent.disconnected.wait(5), "the upstream connection stayed open after the client left"
    assert sent.disconnected_at is not None
    assert sent.disconnected_at - closed_at < CANCEL_WITHIN_S


def test_non_stream_disconnect_cancels_upstream_sdk_timeout(gateway: Gateway, upstream: MockUpstream) -> None:
    rid = new_request_id()
    with make_client(gateway, timeout=1.0) as c, pytest.raises(openai.APITimeoutError):
        c.chat.completions.create(
            model="gpt-slow",
            messages=[{"role": "user", "content": "wait"}],
            extra_body={"mock": {"hang": True}},
            extra_headers={"x-request-id": rid},
        )
    closed_at = time.monotonic()
    sent = upstream.wait_for(rid)
    assert sent.disconnected.wait(5), "the upstream connection stayed open after the client left"
    assert sent.disconnected_at is not None
    assert sent.disconnected_at - closed_at < CANCEL_WITHIN_S


@pytest.mark.parametrize("stream", [False, True])
def test_disconnect_while_waiting_for_first_byte(
    gateway: Gateway, upstream: MockUpstream, stream: bool
) -> None:
    rid = new_request_id()
    data = raw_http.build_request(
        "POST", "/v1/chat/completions", gateway.port, _chat_body("gpt-slow", {"first_byte_delay_ms": 15000}, stream),
        _headers(rid),
    )  # fmt: skip
    import socket

    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(data)
        upstream.wait_for(rid)  # the upstream has the request: now leave
    closed_at = time.monotonic()
    sent = upstream.wait_for(rid)
    assert sent.disconnected.wait(5), "the upstream connection stayed open after the client left"
    assert sent.disconnected_at is not None
    assert sent.disconnected_at - closed_at < CANCEL_WITHIN_S


def test_gateway_fine_after_disconnects(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "still here"}]
    )
    assert resp.choices[0].message.content == "mock: still here"
