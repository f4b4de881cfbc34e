"""Issue 17, low: an idle pooled upstream connection that received bytes nobody asked for kept them,
and the next request sent on it read them as its answer: an upstream (or anything on its path) could
answer a request before it was made, possibly another tenant's. Such a connection is now closed and
the next request goes on a fresh one."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..e2e import raw_http
from ..e2e.gateway import MASTER_KEY, GatewayFactory

FORGED = b'{"id":"forged","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"FORGED"},"finish_reason":"stop"}]}'


def _answer(text: str) -> bytes:
    body = json.dumps(
        {
            "id": "real",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _read_request(conn: socket.socket, buffer: bytearray) -> bool:
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return False
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        data = conn.recv(65536)
        if not data:
            return False
        rest += data
    buffer[:] = rest[length:]
    return True


@contextlib.contextmanager
def raw_upstream() -> Iterator[tuple[int, list[int]]]:
    """Answers every request honestly; on each connection, 0.2 s after its first answer, it also
    writes a whole forged answer that no request asked for."""
    listener = socket.create_server(("127.0.0.1", 0))
    connections: list[int] = []
    stop = threading.Event()

    def serve(conn: socket.socket, number: int) -> None:
        buffer = bytearray()
        with conn:
            first = True
            while not stop.is_set() and _read_request(conn, buffer):
                conn.sendall(_answer(f"real answer on connection {number}"))
                if first:
                    first = False
                    time.sleep(0.2)
                    with contextlib.suppress(OSError):
                        conn.sendall(
                            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                            + f"content-length: {len(FORGED)}\r\n\r\n".encode()
                            + FORGED
                        )

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            connections.append(len(connections) + 1)
            threading.Thread(target=serve, args=(conn, len(connections)), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1], connections
    finally:
        stop.set()
        listener.close()


def _chat(port: int) -> Any:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    response = raw_http.post_json(port, "/v1/chat/completions", body, MASTER_KEY)
    assert response.status == 200, response.body
    return response.json()["choices"][0]["message"]["content"]


def test_unsolicited_bytes_are_never_read_as_the_next_answer(gateway_factory: GatewayFactory) -> None:
    with raw_upstream() as (port, connections):
        config = {
            "providers": [
                {
                    "name": "raw",
                    "kind": "openai",
                    "base_url": f"http://127.0.0.1:{port}/v1",
                    "api_key": "sk-x",
                }
            ],
            "models": [{"name": "m", "deployments": [{"provider": "raw", "model": "m"}]}],
            "auth": {"master_key": MASTER_KEY},
        }
        gateway = gateway_factory(config)
        assert _chat(gateway.port) == "real answer on connection 1"
        time.sleep(0.6)  # the forged answer arrives while the connection idles in the pool
        second = _chat(gateway.port)
        assert second != "FORGED"
        # The tainted connection was closed: the request went on a fresh one.
        assert second == "real answer on connection 2" and len(connections) == 2
