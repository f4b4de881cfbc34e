"""The official `anthropic` SDK pointed at a gatecore server, and raw-HTTP helpers for its routes."""

from __future__ import annotations

import http.client
import json
from typing import Any

import anthropic

from .gateway import MASTER_KEY, Gateway

MESSAGES = "/v1/messages"


def make_anthropic(gw: Gateway, key: str = MASTER_KEY, **kwargs: Any) -> anthropic.Anthropic:
    kwargs.setdefault("timeout", 20.0)
    return anthropic.Anthropic(base_url=gw.base_url, api_key=key, max_retries=0, **kwargs)


def post_raw(
    gw: Gateway, body: bytes | dict[str, Any], headers: dict[str, str] | None = None, path: str = MESSAGES
) -> tuple[int, dict[str, str], bytes]:
    """POST to the gateway as an Anthropic client would (x-api-key); the status, headers and body."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
    sent.update(headers or {})
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20)
    try:
        conn.request("POST", path, data, {k: v for k, v in sent.items() if v})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def sse_events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """`(event name, data JSON)` of every event of an SSE body, in order; asserts each has both."""
    events: list[tuple[str, dict[str, Any]]] = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = block.split("\n")
        names = [line[len("event: ") :] for line in lines if line.startswith("event: ")]
        data = [line[len("data: ") :] for line in lines if line.startswith("data: ")]
        assert len(names) == 1 and len(data) == 1, block
        events.append((names[0], json.loads(data[0])))
    return events


def anthropic_error(body: bytes) -> dict[str, Any]:
    """The `error` object of an Anthropic-shaped error body; asserts the shape."""
    doc = json.loads(body)
    assert doc["type"] == "error", doc
    assert set(doc["error"]) == {"type", "message"}, doc
    error: dict[str, Any] = doc["error"]
    return error
