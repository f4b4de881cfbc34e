"""The official `google-genai` SDK pointed at a gatecore server, and raw-HTTP helpers for its routes."""

from __future__ import annotations

import http.client
import json
from typing import Any

from google import genai
from google.genai import types

from .gateway import MASTER_KEY, Gateway


def make_gemini(gw: Gateway, key: str = MASTER_KEY) -> genai.Client:
    """A Gemini API client whose base URL is gatecore (the SDK adds `/v1beta/models/...`)."""
    options = types.HttpOptions(
        base_url=gw.base_url,
        api_version="v1beta",
        timeout=20_000,
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key=key, http_options=options)


def steer(mock: dict[str, Any], **config: Any) -> types.GenerateContentConfig:
    """A request config whose body carries the OpenAI mock's steering object (passed through)."""
    return types.GenerateContentConfig(http_options=types.HttpOptions(extra_body={"mock": mock}), **config)


def gemini_post(
    gw: Gateway,
    path: str,
    body: bytes | dict[str, Any],
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> tuple[int, dict[str, str], bytes]:
    """A raw request as a Gemini client sends it (`x-goog-api-key`); status, headers and body."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"x-goog-api-key": MASTER_KEY, "content-type": "application/json"}
    sent.update(headers or {})
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20)
    try:
        conn.request(method, path, data if method == "POST" else None, {k: v for k, v in sent.items() if v})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def sse_chunks(body: bytes) -> list[dict[str, Any]]:
    """The JSON of every `data:` event of a Gemini `alt=sse` body, in order."""
    chunks = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        if block.strip():
            assert block.startswith("data: "), block
            chunks.append(json.loads(block[6:]))
    return chunks
