"""Client faults (issue 25): a client that hangs up at every phase of an exchange, slowloris heads
and bodies, pipelined and malformed HTTP. Each is bounded (the gateway answers or lets go on its own
timers), and nothing leaks: one ledger row per request that reached the chain, the key limited to one
request in flight is admitted again, nothing is in flight, and the upstream saw the hang-up.

The client that stops reading a stream is not here: granian buffers what a stream sends without
limit (docs/RELIABILITY.md), so its bound is the upstream answer's size and the model's total timeout.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
import uuid

from ..e2e import raw_http
from ..upstreams.openai_mock import MockUpstream
from .conftest import BODY_READ_TIMEOUT_S, FAULT_KEY, FaultGateway
from .faults_client import headers, send
from .test_upstream_faults import _in_flight

CHAT = "/v1/chat/completions"


def _chat(mock: dict[str, object], stream: bool = False) -> bytes:
    return json.dumps(
        {"model": "ok", "messages": [{"role": "user", "content": "hi"}], "stream": stream, "mock": mock}
    ).encode()


def _settled(port: int) -> None:
    """Wait (bounded) until no request is in flight, then check the one-slot key is admitted."""
    deadline = time.monotonic() + 10
    while _in_flight(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _in_flight(port) == 0
    assert send(port, "chat", "ok", False, FAULT_KEY).status == 200


def test_hang_up_at_every_phase(fault_gateway: FaultGateway, upstream: MockUpstream) -> None:
    gw = fault_gateway.gateway
    port = gw.port
    # 1. Half a head, then gone.
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthor")
    # 2. The head, part of the body, then gone.
    body = _chat({})
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            raw_http.build_request("POST", CHAT, port, body, headers(FAULT_KEY, uuid.uuid4().hex))[:-10]
        )
    _settled(port)

    # 3. While the gateway waits for a slow upstream (past server.disconnect_watch_after).
    waiting = uuid.uuid4().hex
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            raw_http.build_request(
                "POST", CHAT, port, _chat({"first_byte_delay_ms": 900}), headers(FAULT_KEY, waiting)
            )
        )
        time.sleep(0.5)
    assert upstream.wait_for(waiting).disconnected.wait(5), "the upstream exchange was not aborted"
    _settled(port)

    # 4. Mid-stream, after the first event.
    streaming = uuid.uuid4().hex
    stream_body = _chat({"chunks": 100, "gap_ms": 30}, stream=True)
    with raw_http.RawStream(port, CHAT, stream_body, headers(FAULT_KEY, streaming), 10) as stream:
        assert stream.status == 200
        next(stream.events())
    assert upstream.wait_for(streaming).disconnected.wait(5), "the upstream stream was not cancelled"
    _settled(port)

    rows = {r["request_id"]: r for r in fault_gateway.ledger.wait_rows({waiting, streaming})}
    for rid in (waiting, streaming):
        assert rows[rid]["client_gone"] and rows[rid]["status"] == 499, rows[rid]
    assert gw.alive()


def test_slowloris_head_does_not_hold_others(fault_gateway: FaultGateway) -> None:
    port = fault_gateway.gateway.port
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
    try:
        for i, sock in enumerate(socks):
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow-" + str(i).encode())
        # Each trickles a byte while other clients are served.
        for _ in range(3):
            for sock in socks:
                sock.sendall(b"a")
            assert send(port, "chat", "ok", False, FAULT_KEY).status == 200
    finally:
        for sock in socks:
            sock.close()
    _settled(port)


def test_slow_body_is_408_after_the_read_timeout(fault_gateway: FaultGateway) -> None:
    port = fault_gateway.gateway.port
    data = raw_http.build_request("POST", CHAT, port, _chat({}), headers(FAULT_KEY, uuid.uuid4().hex))
    head, _, body = data.partition(b"\r\n\r\n")
    bound = BODY_READ_TIMEOUT_S * 5
    with socket.create_connection(("127.0.0.1", port), timeout=bound) as sock:
        sock.sendall(head + b"\r\n\r\n" + body[:5])
        with contextlib.suppress(OSError):
            for byte in body[5:-1]:  # a byte every 0.2 s: never whole within the read timeout
                if select.select([sock], [], [], 0.2)[0]:
                    break  # the gateway answered
                sock.sendall(bytes([byte]))
        reader = raw_http._Reader(sock, time.monotonic() + bound)
        status, _, _ = raw_http._parse_head(reader.read_until(b"\r\n\r\n"))
    assert status == 408
    _settled(port)


def test_pipelined_requests_are_answered_in_order(fault_gateway: FaultGateway) -> None:
    port = fault_gateway.gateway.port
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    one = raw_http.build_request("POST", CHAT, port, _chat({}), headers(FAULT_KEY, first))
    two = raw_http.build_request("POST", CHAT, port, _chat({}), headers(FAULT_KEY, second))
    one = one.replace(b"Connection: close", b"Connection: keep-alive")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(one + two)
        reader = raw_http._Reader(sock, time.monotonic() + 10)
        ids = []
        for _ in range(2):
            status, _, hdrs = raw_http._parse_head(reader.read_until(b"\r\n\r\n"))
            raw_http._read_body(reader, "POST", status, hdrs)
            assert status == 200
            ids.append(dict(hdrs)["x-request-id"])
    assert ids == [first, second]
    _settled(port)


def test_malformed_http_is_refused_and_the_worker_lives(fault_gateway: FaultGateway) -> None:
    gw = fault_gateway.gateway
    for garbage in (
        b"GARBAGE\r\n\r\n",
        b"\x00\xff" * 100 + b"\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    ):
        try:
            resp = raw_http.exchange(gw.port, garbage, timeout=5)
        except raw_http.ConnectionClosed:
            continue
        assert resp.status == 400, resp
    assert gw.alive()
    _settled(gw.port)


def test_hang_up_after_slow_requests_on_the_same_connection(
    fault_gateway: FaultGateway, upstream: MockUpstream
) -> None:
    """Slow answers (each watched for a disconnect) on one keep-alive connection, then a hang-up during
    the third: the upstream is still aborted. granian wakes only the disconnect future of the request in
    flight (not the earlier ones, not one shared by the connection's requests): a fix of the per-call
    leak (docs/RELIABILITY.md) must keep this passing."""
    port = fault_gateway.gateway.port
    slow = _chat({"first_byte_delay_ms": 500})
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = raw_http._Reader(sock, time.monotonic() + 10)
        for _ in range(2):
            data = raw_http.build_request(
                "POST",
                CHAT,
                port,
                slow,
                [*headers(FAULT_KEY, uuid.uuid4().hex), ("Connection", "keep-alive")],
            )
            sock.sendall(data)
            status, _, hdrs = raw_http._parse_head(reader.read_until(b"\r\n\r\n"))
            raw_http._read_body(reader, "POST", status, hdrs)
            assert status == 200
        last = uuid.uuid4().hex
        slower = _chat({"first_byte_delay_ms": 900})
        sock.sendall(
            raw_http.build_request(
                "POST", CHAT, port, slower, [*headers(FAULT_KEY, last), ("Connection", "keep-alive")]
            )
        )
        time.sleep(0.5)
    assert upstream.wait_for(last).disconnected.wait(5), "the upstream exchange was not aborted"
    row = {r["request_id"]: r for r in fault_gateway.ledger.wait_rows({last})}[last]
    assert row["status"] == 499 and row["client_gone"]
    _settled(port)
