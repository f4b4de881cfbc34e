"""A loopback upstream that speaks OpenAI's HTTP wire format, written from OpenAI's API reference.

It serves chat completions, legacy completions, embeddings, Responses (openai_responses.py) and the model list, streaming included, on
127.0.0.1 from a background thread with its own event loop (mock_server.py). Tests point a gateway's
provider at ``MockUpstream.base_url``, steer each answer with an extra body field ``"mock": {...}``
(openai_knobs.py; a pass-through gateway forwards it unchanged) and read back what the upstream
received in ``MockUpstream.requests``. See README.md beside this file for the steering keys.

The parts: request checks (openai_requests.py), answers and stream events (openai_answers.py), stream
writing (openai_stream_writer.py); this module routes and dispatches.

Example::

    with MockUpstream() as upstream:
        ...  # configure a provider with base_url=upstream.base_url, send requests
        recorded = upstream.wait_for("req-1")  # matched on the x-request-id header
        assert recorded.body_json["model"] == "upstream-model-1"
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from aiohttp import web

from .mock_server import MockServer, RecordedRequest
from .openai_answers import CREATED, MOCK_MODELS, OpenAIAnswers, expected_embedding
from .openai_knobs import MockOptions, default_error
from .openai_requests import BadRequest, error_body
from .openai_responses import answer_responses
from .openai_stream_writer import closing, mark_disconnected, whole_stream, write_stream
from .openai_surface import add_surface_routes

__all__ = ["MockUpstream", "RecordedRequest", "RefusedPort", "expected_embedding"]


class MockUpstream(MockServer):
    """An OpenAI-compatible HTTP server on 127.0.0.1, run in a background thread."""

    thread_name = "openai-mock"
    client_max_size = 256 * 1024 * 1024
    backlog = 1024

    def __init__(self, host: str = "127.0.0.1", *, keepalive_timeout: float | None = None) -> None:
        super().__init__(host, keepalive_timeout=keepalive_timeout)
        self._answers = OpenAIAnswers()

    @property
    def base_url(self) -> str:
        """The base URL an OpenAI SDK or an OpenAI-compatible provider config uses."""
        return f"{self.origin}/v1"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        add_surface_routes(app, self)  # rerank, moderations, audio, images (openai_surface.py)
        app.router.add_post("/v1/responses", self._responses)
        self._add_routes(app)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    def _add_routes(self, app: web.Application) -> None:
        """Subclasses add their own routes here (before the catch-all 404)."""

    # -- handlers --------------------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "chat")

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "completion")

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "embedding")

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        return await answer_responses(request, await self.record(request))

    async def _models(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        data = [{"id": m, "object": "model", "created": CREATED, "owned_by": "mock"} for m in MOCK_MODELS]
        recorded.finished.set()
        return self._json(recorded, 200, {"object": "list", "data": data})

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        recorded.finished.set()
        message = f"Invalid URL ({request.method} {request.path})"
        return self._json(recorded, 404, error_body(message, "invalid_request_error"))

    @staticmethod
    def _json(
        recorded: RecordedRequest,
        status: int,
        obj: Any,
        content_type: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> web.Response:
        recorded.status = status
        recorded.response_json = obj
        return web.Response(
            status=status,
            body=json.dumps(obj).encode(),
            headers={"Content-Type": content_type or "application/json", **dict(headers)},
        )

    async def _handle(self, request: web.Request, kind: str) -> web.StreamResponse:
        recorded = await self.record(request)
        body = recorded.body_json
        opts = MockOptions.from_body(body)
        answers = self._answers
        try:
            if opts.hang:
                await asyncio.sleep(3600)
            if opts.first_byte_delay_ms:
                await asyncio.sleep(opts.first_byte_delay_ms / 1000)
            if not isinstance(body, dict):
                msg = "We could not parse the JSON body of your request."
                return closing(self._json(recorded, 400, error_body(msg, "invalid_request_error")), opts)
            if opts.status is not None and opts.status >= 400:
                error = opts.error if opts.error is not None else default_error(opts.status)
                answer = self._json(recorded, opts.status, {"error": error}, opts.content_type, opts.headers)
                return closing(answer, opts)
            try:
                if not isinstance(body.get("model"), str):
                    raise BadRequest("you must provide a model parameter", "model")
                if kind == "embedding":
                    obj = answers.embedding_response(body)
                    return closing(self._json(recorded, 200, obj, opts.content_type, opts.headers), opts)
                stream = body.get("stream") is True
                pieces, usage = answers.answer(kind, body, opts)
            except BadRequest as exc:
                err = error_body(str(exc), "invalid_request_error", exc.param)
                return closing(self._json(recorded, 400, err), opts)
            if not stream or opts.no_stream:
                obj = answers.whole_response(kind, body, pieces, usage, opts)
                return closing(self._json(recorded, 200, obj, opts.content_type, opts.headers), opts)
            payloads = answers.stream_payloads(kind, body, pieces, usage, opts)
            if opts.all_at_once:
                return closing(whole_stream(recorded, payloads, opts), opts)
            return await write_stream(request, recorded, payloads, opts)
        except asyncio.CancelledError:
            mark_disconnected(recorded)
            raise
        finally:
            recorded.finished.set()


class RefusedPort:
    """A loopback port that refuses connections: bound (so no one else takes it) but not listening."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self._sock.close()
