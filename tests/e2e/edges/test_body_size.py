"""Client bodies at the size limit (``server.max_body_bytes``), with Content-Length or chunked, and a
slow chunked upload."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator

import pytest

from ...upstreams.broken_upstream import chunk
from ...upstreams.openai_mock import MockUpstream
from .. import raw_http
from ..conftest import new_request_id
from ..gateway import Gateway
from .shared import CHAT, SMALL_LIMIT, assert_error, auth, chat_body


def _sized_body(size: int) -> bytes:
    """A valid chat body of exactly ``size`` bytes."""
    envelope = json.dumps(chat_body("gpt-test", "")).encode()
    body = json.dumps(chat_body("gpt-test", "p" * (size - len(envelope)))).encode()
    assert len(body) == size
    return body


def _chunked(data: bytes, size: int) -> bytes:
    return b"".join(chunk(data[i : i + size]) for i in range(0, len(data), size)) + b"0\r\n\r\n"


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
@pytest.mark.parametrize(
    ("size", "status"),
    [(300, 200), (SMALL_LIMIT, 200), (SMALL_LIMIT + 1, 413), (3 * SMALL_LIMIT, 413)],
)
def test_body_size_limit(
    edges_gateway: Gateway, upstream: MockUpstream, size: int, status: int, chunked: bool
) -> None:
    rid = new_request_id()
    body = _sized_body(size)
    headers = [*auth(), ("x-request-id", rid)]
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
        raw = raw_http.build_request(
            "POST", CHAT, edges_gateway.port, _chunked(body, 1000), headers, content_length=False
        )
    else:
        raw = raw_http.build_request("POST", CHAT, edges_gateway.port, body, headers)
    resp = raw_http.exchange(edges_gateway.port, raw, timeout=10)
    if status == 413:
        assert_error(resp, 413, "body_too_large")
        assert not upstream.received(rid)
        return
    assert resp.status == 200, resp.body[:300]
    sent = upstream.wait_for(rid)
    assert sent.body == body.replace(b'"gpt-test"', b'"upstream-model-1"', 1), "the body bytes pass through"


def test_slow_chunked_upload(edges_gateway: Gateway, upstream: MockUpstream) -> None:
    """A chunked body that arrives in pieces over time (http.client picks chunked for an iterator)."""
    rid = new_request_id()
    body = _sized_body(2000)

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(body), 300):
            yield body[i : i + 300]
            time.sleep(0.03)

    conn = http.client.HTTPConnection("127.0.0.1", edges_gateway.port, timeout=10)
    try:
        conn.request("POST", CHAT, pieces(), {**dict(auth()), "x-request-id": rid})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    assert resp.status == 200, data[:300]
    assert upstream.wait_for(rid).body_json["messages"] == json.loads(body)["messages"]
