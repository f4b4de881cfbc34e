"""Issue 17, finding 5: the body was read whole before the caller was known, with no read deadline.
An unauthenticated POST declaring 20 MB that sent 9 bytes got no answer after 45 s, and stalled
uploads grew the worker by hundreds of MiB. Now auth runs from the headers first (a 401 without
reading the body), and a known caller's body must arrive within `server.body_read_timeout_s` (408)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator

from ..e2e.gateway import MASTER_KEY, GatewayFactory, standard_config
from ..upstreams.openai_mock import MockUpstream, RefusedPort

BODY = b'{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}'


@contextlib.contextmanager
def stalled_upload(port: int, declared: int, sent: bytes, key: str | None) -> Iterator[socket.socket]:
    """A POST whose head declares `declared` bytes of body, of which only `sent` is sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        head = [
            "POST /v1/chat/completions HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Content-Type: application/json",
            f"Content-Length: {declared}",
        ]
        if key is not None:
            head.append(f"Authorization: Bearer {key}")
        sock.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + sent)
        yield sock
    finally:
        sock.close()


def answer_of(sock: socket.socket, timeout: float) -> tuple[int, dict[str, object], float]:
    """(status, JSON body, seconds waited) of the answer on `sock`."""
    started = time.monotonic()
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection without an answer"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    return status, json.loads(rest[:length]), time.monotonic() - started


def test_an_unknown_callers_stalled_upload_gets_a_401_without_being_read(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    gw = gateway_factory(standard_config(upstream.base_url, refused.base_url, body_read_timeout_s=30))
    with contextlib.ExitStack() as stack:
        uploads = [stack.enter_context(stalled_upload(gw.port, 31_000_000, b"{" * 9, None)) for _ in range(8)]
        for sock in uploads:
            status, body, waited = answer_of(sock, timeout=10)
            assert status == 401
            assert body["error"]["code"] == "missing_api_key"  # type: ignore[index]
            assert waited < 5  # at once: not after the read deadline (30 s), nor never
        wrong = stack.enter_context(stalled_upload(gw.port, 20_000_000, b"{" * 9, "sk-not-a-key"))
        status, body, _ = answer_of(wrong, timeout=10)
        assert status == 401 and body["error"]["code"] == "invalid_api_key"  # type: ignore[index]


def test_a_known_callers_stalled_upload_ends_with_a_408_at_the_deadline(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    gw = gateway_factory(standard_config(upstream.base_url, refused.base_url, body_read_timeout_s=1))
    with stalled_upload(gw.port, 1000, BODY[:9], MASTER_KEY) as sock:
        status, body, waited = answer_of(sock, timeout=15)
    assert status == 408
    assert body["error"] == {
        "message": "The request body did not arrive within 1 s.",
        "type": "invalid_request_error",
        "param": None,
        "code": "body_timeout",
    }
    assert 0.9 <= waited < 10
    # A whole body within the deadline is served as ever, on a fresh connection.
    with stalled_upload(gw.port, len(BODY), BODY, MASTER_KEY) as sock:
        status, body, _ = answer_of(sock, timeout=15)
    assert status == 200, body


def test_the_admin_apis_stalled_upload_without_a_key_gets_a_401_without_being_read(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    gw = gateway_factory(standard_config(upstream.base_url, refused.base_url, body_read_timeout_s=30))
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    try:
        head = f"POST /admin/v1/keys HTTP/1.1\r\nHost: 127.0.0.1:{gw.port}\r\nContent-Length: 500000\r\n"
        sock.sendall(head.encode() + b"Content-Type: application/json\r\n\r\n" + b"{" * 9)
        status, body, waited = answer_of(sock, timeout=10)
    finally:
        sock.close()
    assert status == 401 and waited < 5
    assert body["error"]["code"] == "missing_api_key"  # type: ignore[index]
