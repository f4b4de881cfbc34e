"""Requests of the reliability suite, in each inbound API's own format, sent raw (the exact status,
body and events are what is checked), and what they got back."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from ..e2e import raw_http

PATHS = {"chat": "/v1/chat/completions", "messages": "/v1/messages", "responses": "/v1/responses"}
CLIENT_TIMEOUT_S = 15.0
"""Far above every configured upstream timeout: a request still open then is a hang."""


def body(api: str, model: str, stream: bool, text: str = "hi") -> dict[str, Any]:
    if api == "chat":
        return {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
    if api == "messages":
        messages = [{"role": "user", "content": text}]
        return {"model": model, "max_tokens": 16, "messages": messages, "stream": stream}
    return {"model": model, "input": text, "stream": stream}


def headers(key: str, rid: str) -> list[tuple[str, str]]:
    return [
        ("Authorization", f"Bearer {key}"),
        ("content-type", "application/json"),
        ("anthropic-version", "2023-06-01"),
        ("x-request-id", rid),
    ]


@dataclass
class Answer:
    rid: str
    status: int
    ended: bool
    """The answer was complete (a whole body, or a stream that ended) before CLIENT_TIMEOUT_S."""
    body: bytes = b""
    events: tuple[bytes, ...] = ()

    def error_event(self, api: str) -> bool:
        """The stream's last event is the API's own error event."""
        if not self.events:
            return False
        last = json.loads(self.events[-1])
        if not isinstance(last, dict):
            return False
        if api == "chat":
            return "error" in last
        return bool(last.get("type") == ("error" if api == "messages" else "response.failed"))


def send(port: int, api: str, model: str, stream: bool, key: str, text: str = "hi") -> Answer:
    rid = uuid.uuid4().hex
    data = json.dumps(body(api, model, stream, text)).encode()
    if stream:
        result = raw_http.read_stream(port, PATHS[api], data, headers(key, rid), CLIENT_TIMEOUT_S)
        events = tuple(d for d in result.data if d != b"[DONE]")
        return Answer(rid, result.status, result.ended, events=events)
    try:
        resp = raw_http.request(port, "POST", PATHS[api], data, headers(key, rid), timeout=CLIENT_TIMEOUT_S)
    except TimeoutError:
        return Answer(rid, 0, False)
    return Answer(rid, resp.status, True, body=resp.body)
