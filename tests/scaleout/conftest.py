"""Fixtures of the scale-out suite: the e2e suite's upstream, gateways and PostgreSQL, and helpers to
drive many live streams at once."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from typing import Any

import openai

from ..e2e.conftest import gateway_factory, postgres, upstream
from ..e2e.gateway import MASTER_KEY, Gateway

__all__ = ["gateway_factory", "postgres", "upstream"]

STREAM_CHUNKS = 20


def get_json(port: int, path: str, key: str | None = None, timeout: float = 2.0) -> tuple[int, Any]:
    """Status and decoded body of a GET on a fresh connection (None for a body that is not JSON)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        try:
            return response.status, json.loads(body)
        except ValueError:
            return response.status, None
    finally:
        conn.close()


def post_json(port: int, path: str, body: Any = None, key: str = MASTER_KEY) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        payload = json.dumps(body if body is not None else {}).encode()
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        conn.request("POST", path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def ready_hash(port: int) -> str | None:
    """The config hash /readyz reports on a fresh connection (None when not ready)."""
    try:
        status, body = get_json(port, "/readyz")
    except OSError:
        return None
    return body.get("config_hash") if status == 200 and isinstance(body, dict) else None


def wait_hash_everywhere(gw: Gateway, old: str | None, timeout: float = 5.0) -> str:
    """The new hash, once 20 fresh connections in a row (spread over the workers) all report it."""
    deadline = time.monotonic() + timeout
    streak, seen = 0, None
    while streak < 20:
        assert time.monotonic() < deadline, f"workers still report {old} (streak {streak})"
        digest = ready_hash(gw.port)
        if digest is not None and digest != old and (seen is None or digest == seen):
            seen, streak = digest, streak + 1
        else:
            streak = 0
        time.sleep(0.02)
    assert seen is not None
    return seen


class LiveStreams:
    """`count` streamed chat requests run concurrently by the async openai SDK; `started` is set once
    each has its first chunk, and `run()` returns every stream's received text and finish reason."""

    def __init__(self, gw: Gateway, model: str, count: int, gap_ms: int, prefix: str):
        self.gw = gw
        self.model = model
        self.count = count
        self.gap_ms = gap_ms
        self.prefix = prefix
        self.first_chunks = 0
        self.request_ids = [f"{prefix}-{i}" for i in range(count)]

    async def _one(self, client: openai.AsyncOpenAI, rid: str) -> tuple[int, str | None]:
        stream = await client.chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": f"live stream {rid}"}],
            stream=True,
            extra_headers={"x-request-id": rid},
            extra_body={"mock": {"chunks": STREAM_CHUNKS, "gap_ms": self.gap_ms}},
        )
        chunks, finish = 0, None
        async for event in stream:
            if event.choices and event.choices[0].delta.content:
                chunks += 1
                if chunks == 1:
                    self.first_chunks += 1
            if event.choices and event.choices[0].finish_reason:
                finish = event.choices[0].finish_reason
        return chunks, finish

    async def run(self, during: Any) -> list[tuple[int, str | None] | BaseException]:
        """Run the streams; once all have started, call `during()` in a thread (a reload, a SIGTERM)."""
        async with openai.AsyncOpenAI(
            base_url=self.gw.openai_base_url, api_key=MASTER_KEY, max_retries=0, timeout=30
        ) as client:
            tasks = [asyncio.ensure_future(self._one(client, rid)) for rid in self.request_ids]
            for _ in range(200):  # up to 10 s for every stream to start
                if self.first_chunks >= self.count or all(t.done() for t in tasks):
                    break
                await asyncio.sleep(0.05)
            assert self.first_chunks == self.count, f"only {self.first_chunks} streams started"
            await asyncio.to_thread(during)
            return list(await asyncio.gather(*tasks, return_exceptions=True))
