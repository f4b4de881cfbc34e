"""A deterministic embedding model for the semantic cache's tests: OpenAI's `POST /v1/embeddings`
answering a bag-of-words vector, so paraphrases that share most words are close and unrelated texts
are not, and every similarity can be computed by the test itself (`similarity`).

Each word (lower-cased, letters and digits only) adds 1 to one of `DIMS` dimensions chosen by its
CRC32; the vector is normalised. `failing` makes it answer 500, `delay_s` answer late.
"""

from __future__ import annotations

import asyncio
import math
import re
import zlib

from aiohttp import web

from .mock_server import MockServer

DIMS = 256
_WORD = re.compile(r"[a-z0-9]+")


def embed(text: str) -> list[float]:
    """The vector this mock answers for `text`."""
    vector = [0.0] * DIMS
    for word in _WORD.findall(text.lower()):
        vector[zlib.crc32(word.encode()) % DIMS] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def similarity(a: str, b: str) -> float:
    """The cosine similarity of two texts' vectors."""
    return sum(x * y for x, y in zip(embed(a), embed(b), strict=True))


class EmbeddingMock(MockServer):
    thread_name = "embedding-mock"

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.delay_s = 0.0

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/embeddings", self._embeddings)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.failing:
                return web.json_response({"error": {"message": "down", "type": "server_error"}}, status=500)
            body = recorded.body_json
            text = body.get("input") if isinstance(body, dict) else None
            if not isinstance(text, str):
                return web.json_response({"error": {"message": "input must be a string"}}, status=400)
            return web.json_response(
                {
                    "object": "list",
                    "model": body.get("model"),
                    "data": [{"object": "embedding", "index": 0, "embedding": embed(text)}],
                    "usage": {"prompt_tokens": len(text.split()), "total_tokens": len(text.split())},
                }
            )
        finally:
            recorded.finished.set()
