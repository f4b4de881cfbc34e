"""What the client sees when the upstream fails: refused, slow, stalled, cut, or answering an error."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream
from . import raw_http
from .conftest import new_request_id
from .gateway import MASTER_KEY, UPSTREAM_KEY, Gateway

SECRETS = (MASTER_KEY, UPSTREAM_KEY)


def _body(model: str, stream: bool = False, mock: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "fail?"}],
        "stream": stream,
    }
    if mock is not None:
        body["mock"] = mock
    return body


def _assert_error(resp: raw_http.RawResponse, status: int, code: str | None) -> dict[str, Any]:
    assert resp.status == status, resp.body[:500]
    for secret in SECRETS:
        assert secret.encode() not in resp.body
    obj = resp.json()
    error = obj["error"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert {"message", "type", "param", "code"} <= set(error)
    if code is not None:
        assert error["code"] == code
    return obj  # type: ignore[no-any-return]


def _stream_events(gw: Gateway, body: dict[str, Any], timeout: float = 8) -> raw_http.StreamResult:
    headers = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
    return raw_http.read_stream(gw.port, "/v1/chat/completions", json.dumps(body).encode(), headers, timeout)


def _assert_ended_with_error(result: raw_http.StreamResult, codes: set[str]) -> dict[str, Any]:
    """The stream's last event is an OpenAI error with one of ``codes``, and the body then ends."""
    assert result.status == 200
    assert result.events, "no event at all"
    last = json.loads(result.events[-1].data)
    assert "error" in last, f"the stream did not end with an error event: {result.data[-2:]}"
    error: dict[str, Any] = last["error"]
    assert error["code"] in codes
    assert {"message", "type", "param", "code"} <= set(error)
    for secret in SECRETS:
        assert secret.encode() not in result.events[-1].data
    assert b"[DONE]" not in result.data
    assert result.ended, (
        f"the response stayed open after the error event (waited {result.elapsed:.1f} s): "
        "the chunked body was never terminated nor the connection closed"
    )
    return error


# -- no answer -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_connection_refused_is_502(gateway: Gateway, stream: bool) -> None:
    resp = raw_http.post_json(gateway.port, "/v1/chat/completions", _body("gpt-refused", stream), MASTER_KEY)
    _assert_error(resp, 502, "upstream_unreachable")


def test_connection_refused_sdk(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-refused", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502


@pytest.mark.parametrize("stream", [False, True])
def test_first_byte_timeout_is_504(gateway: Gateway, stream: bool) -> None:
    started = time.monotonic()
    body = _body("gpt-test", stream, {"first_byte_delay_ms": 4000})
    resp = raw_http.post_json(gateway.port, "/v1/chat/completions", body, MASTER_KEY)
    elapsed = time.monotonic() - started
    _assert_error(resp, 504, "upstream_timeout")
    assert 0.8 < elapsed < 3.5, f"first_byte is 1 s, answered after {elapsed:.2f} s"


def test_total_timeout_is_504(gateway: Gateway) -> None:
    started = time.monotonic()
    resp = raw_http.post_json(
        gateway.port, "/v1/chat/completions", _body("gpt-total", mock={"hang": True}), MASTER_KEY
    )
    elapsed = time.monotonic() - started
    _assert_error(resp, 504, "upstream_timeout")
    assert 1.2 < elapsed < 4.0, f"total is 1.5 s, answered after {elapsed:.2f} s"


def test_total_timeout_mid_stream_ends_with_error_event(gateway: Gateway) -> None:
    result = _stream_events(gateway, _body("gpt-total", True, {"gap_ms": 200, "chunks": 50}))
    _assert_ended_with_error(result, {"upstream_timeout", "upstream_stream_error"})
    error_at = result.events[-1].at - (result.events[0].at if result.events else 0)
    assert error_at < 3.0, "the error comes soon after the total timeout (1.5 s)"


# -- stalled or cut streams ----------------------------------------------------------------------------


def test_idle_stream_ends_with_error_event(gateway: Gateway) -> None:
    result = _stream_events(gateway, _body("gpt-test", True, {"idle_after": 2, "idle_ms": 4000}))
    assert len(result.events) == 3, result.data
    assert [json.loads(e)["choices"][0]["delta"] for e in result.data[:2]] == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "mock: "},
    ]
    gap = result.events[2].at - result.events[1].at
    assert 0.8 < gap < 2.5, f"idle is 1 s; the error came {gap:.2f} s after the last event"
    _assert_ended_with_error(result, {"upstream_stream_error"})


def test_cut_stream_ends_with_error_event(gateway: Gateway) -> None:
    result = _stream_events(gateway, _body("gpt-test", True, {"cut_after": 3, "chunks": 10}))
    assert len(result.events) == 4, result.data
    assert all("choices" in json.loads(e) for e in result.data[:3])
    _assert_ended_with_error(result, {"upstream_stream_error"})


def test_cut_stream_sdk_raises(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "cut"}],
        stream=True,
        extra_body={"mock": {"cut_after": 3, "chunks": 10}},
    )
    received: list[str] = []
    with stream, pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")  # noqa: PERF401 - keep what came before the error
    assert received == ["", "tok0 ", "tok1 "]
    assert isinstance(info.value.body, dict)
    assert info.value.body.get("code") == "upstream_stream_error"


def test_idle_stream_sdk_raises(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "stall"}],
        stream=True,
        extra_body={"mock": {"idle_after": 2, "idle_ms": 4000}},
    )
    with stream, pytest.raises(openai.APIError):
        for _ in stream:
            pass


# -- upstream error answers ----------------------------------------------------------------------------

UPSTREAM_STATUSES = [400, 401, 403, 404, 409, 422, 429, 500, 502, 503]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("status", UPSTREAM_STATUSES)
def test_upstream_error_status_and_body_pass_through(gateway: Gateway, status: int, stream: bool) -> None:
    error = {
        "message": f"custom upstream failure {status}",
        "type": "mock_error",
        "param": "p",
        "code": f"c{status}",
    }
    body = _body("gpt-test", stream, {"status": status, "error": error})
    resp = raw_http.post_json(gateway.port, "/v1/chat/completions", body, MASTER_KEY)
    assert resp.status == status
    assert resp.json() == {"error": error}


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, openai.BadRequestError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_upstream_error_sdk(
    client: openai.OpenAI, status: int, exc_type: type[openai.APIStatusError]
) -> None:
    with pytest.raises(exc_type) as info:
        client.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "err"}],
            extra_body={"mock": {"status": status}},
        )
    assert info.value.status_code == status
    assert f"mock upstream error {status}" in info.value.message


def test_gateway_still_serves_after_failures(client: openai.OpenAI, upstream: MockUpstream) -> None:
    rid = new_request_id()
    resp = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "ok"}], extra_headers={"x-request-id": rid}
    )
    assert resp.choices[0].message.content == "mock: ok"
    assert upstream.wait_for(rid).status == 200
