"""What the edge-of-the-contract tests share: request bodies and headers, the raw stream read, and the
check every error answer must pass."""

from __future__ import annotations

import json
from typing import Any

from openai.types.chat import ChatCompletionMessageParam

from .. import raw_http
from ..gateway import MASTER_KEY, TEAM_KEY, UPSTREAM_KEY, Gateway

CHAT = "/v1/chat/completions"
BOGUS_KEY = "sk-bogus-e2e-edges-5e0c"
SECRETS = (MASTER_KEY, TEAM_KEY, UPSTREAM_KEY, BOGUS_KEY)
SMALL_LIMIT = 4096
"""server.max_body_bytes of the edges gateway."""
IDLE_CLOSE_S = 0.3
"""The keep-alive timeout of the upstream that closes idle connections."""


def user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def chat_body(model: str, text: str = "edge", stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream, **extra}


def auth(key: str = MASTER_KEY) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {key}"), ("Content-Type", "application/json")]


def assert_error(resp: raw_http.RawResponse, status: int, code: str | None) -> dict[str, Any]:
    """An OpenAI-shaped error with that status (and code), no secret in it."""
    assert resp.status == status, resp.body[:500]
    assert (resp.header("content-type") or "").startswith("application/json")
    for secret in SECRETS:
        assert secret.encode() not in resp.body
    error: dict[str, Any] = resp.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    assert isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def stream_raw(gw: Gateway, body: dict[str, Any], rid: str, timeout: float = 8.0) -> raw_http.StreamResult:
    headers = [*auth(), ("x-request-id", rid)]
    return raw_http.read_stream(gw.port, CHAT, json.dumps(body).encode(), headers, timeout)
