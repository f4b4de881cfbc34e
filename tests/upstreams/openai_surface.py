"""The rest of OpenAI's surface on the OpenAI mock, written from OpenAI's API reference (and, for
rerank, the shape Cohere, Jina, vLLM and TEI's OpenAI-style servers share):

| route | answer |
| --- | --- |
| `POST /v1/rerank` | `{"id", "model", "results": [{"index", "relevance_score", "document"?}], "usage"}`: a document's score is the share of the query's words it contains; `top_n`, `return_documents` |
| `POST /v1/moderations` | `{"id", "model", "results": [{"flagged", "categories", "category_scores"}]}` per input; an input with "attack" is flagged as violence |
| `POST /v1/audio/speech` | audio bytes: `b"ID3MOCK"` + the input text in UTF-8, its content type after `response_format` (mp3 default) |
| `POST /v1/audio/transcriptions` | a multipart form (`file`, `model`, `response_format`?): `{"text": "heard <n> bytes: <first 16 bytes as text>", "usage"}`, or the text alone for `response_format=text` |
| `POST /v1/images/generations` | `{"created", "data": [{"b64_json"}...n], "usage"}` |
| `POST /v1/responses/compact` | `{"id", "object": "response.compaction", "created_at", "output": [the input's user messages..., {"type": "compaction", "encrypted_content"}], "usage"}` |

Any JSON body may carry the OpenAI mock's `"mock": {"status": N}` to be answered with that error; the
form's `mock_status` field does the same for transcriptions.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .mock_server import MockServer, RecordedRequest
from .openai_requests import error_body

AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
_WORD = re.compile(r"\w+")


Handler = Callable[[MockServer, web.Request], Awaitable[web.Response]]


def add_surface_routes(app: web.Application, server: MockServer) -> None:
    """Serve the routes above on `app`, recording each request in `server`."""

    def bound(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            return await handler(server, request)

        return handle

    app.router.add_post("/v1/rerank", bound(_rerank))
    app.router.add_post("/v1/moderations", bound(_moderations))
    app.router.add_post("/v1/audio/speech", bound(_speech))
    app.router.add_post("/v1/audio/transcriptions", bound(_transcriptions))
    app.router.add_post("/v1/images/generations", bound(_images))
    app.router.add_post("/v1/responses/compact", bound(_compact))


def form_fields(content_type: str, body: bytes) -> dict[str, tuple[bytes, str | None]]:
    """The fields of a multipart/form-data body: name → (value bytes, filename)."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, tuple[bytes, str | None]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = (payload, part.get_filename())
    return fields


async def _begin(
    server: MockServer, request: web.Request
) -> tuple[RecordedRequest, Any, web.Response | None]:
    recorded = await server.record(request)
    body = recorded.body_json
    error: web.Response | None = None
    if request.content_type == "application/json":
        if not isinstance(body, dict) or not isinstance(body.get("model", ""), str):
            error = MockServer.json_answer(
                recorded, 400, error_body("Invalid body.", "invalid_request_error")
            )
        else:
            status = (body.get("mock") or {}).get("status")
            if isinstance(status, int) and status >= 400:
                error = MockServer.json_answer(
                    recorded, status, error_body(f"mock error {status}", "api_error")
                )
    return recorded, body, error


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


async def _rerank(server: MockServer, request: web.Request) -> web.Response:
    recorded, body, error = await _begin(server, request)
    if error is not None:
        return error
    query = _words(str(body.get("query", "")))
    documents = body.get("documents") or []
    results = []
    for i, document in enumerate(documents):
        text = document if isinstance(document, str) else str((document or {}).get("text", ""))
        score = len(query & _words(text)) / max(1, len(query))
        result: dict[str, Any] = {"index": i, "relevance_score": score}
        if body.get("return_documents"):
            result["document"] = {"text": text}
        results.append(result)
    results.sort(key=lambda r: -r["relevance_score"])
    if isinstance(body.get("top_n"), int):
        results = results[: body["top_n"]]
    tokens = len(query) + sum(len(_words(str(d))) for d in documents)
    answer = {
        "id": "rerank-mock",
        "model": body["model"],
        "results": results,
        "usage": {"total_tokens": tokens},
    }
    return MockServer.json_answer(recorded, 200, answer)


async def _moderations(server: MockServer, request: web.Request) -> web.Response:
    recorded, body, error = await _begin(server, request)
    if error is not None:
        return error
    inputs = body.get("input")
    items = inputs if isinstance(inputs, list) else [inputs]
    results = []
    for item in items:
        text = item if isinstance(item, str) else str(item)
        violent = "attack" in text.lower()
        results.append(
            {
                "flagged": violent,
                "categories": {"violence": violent, "harassment": False},
                "category_scores": {"violence": 0.97 if violent else 0.01, "harassment": 0.0},
            }
        )
    answer = {"id": "modr-mock", "model": body.get("model", "omni-moderation-latest"), "results": results}
    return MockServer.json_answer(recorded, 200, answer)


async def _speech(server: MockServer, request: web.Request) -> web.Response:
    recorded, body, error = await _begin(server, request)
    if error is not None:
        return error
    kind = AUDIO_TYPES.get(str(body.get("response_format", "mp3")), "audio/mpeg")
    audio = b"ID3MOCK" + str(body.get("input", "")).encode()
    recorded.status = 200
    recorded.finished.set()
    return web.Response(status=200, body=audio, headers={"Content-Type": kind})


async def _transcriptions(server: MockServer, request: web.Request) -> web.Response:
    recorded, _, _ = await _begin(server, request)
    if not request.content_type.startswith("multipart/form-data"):
        return MockServer.json_answer(
            recorded, 400, error_body("Expected a multipart form.", "invalid_request_error")
        )
    fields = form_fields(request.headers["Content-Type"], recorded.body)
    if "file" not in fields or "model" not in fields:
        return MockServer.json_answer(
            recorded, 400, error_body("'file' and 'model' are required.", "invalid_request_error")
        )
    status = fields.get("mock_status")
    if status is not None:
        code = int(status[0])
        return MockServer.json_answer(recorded, code, error_body(f"mock error {code}", "api_error"))
    audio = fields["file"][0]
    text = f"heard {len(audio)} bytes: {audio[:16].decode(errors='replace')}"
    if fields.get("response_format", (b"json", None))[0] == b"text":
        recorded.status = 200
        recorded.finished.set()
        return web.Response(status=200, text=text, content_type="text/plain")
    output = len(text.split())
    usage = {"type": "tokens", "input_tokens": 12, "output_tokens": output, "total_tokens": 12 + output}
    return MockServer.json_answer(recorded, 200, {"text": text, "usage": usage})


async def _images(server: MockServer, request: web.Request) -> web.Response:
    recorded, body, error = await _begin(server, request)
    if error is not None:
        return error
    n = body.get("n") or 1
    image = base64.b64encode(b"\x89PNG mock " + str(body.get("prompt", "")).encode()).decode()
    answer = {
        "created": int(time.time()),
        "data": [{"b64_json": image, "revised_prompt": body.get("prompt")} for _ in range(n)],
        "usage": {"input_tokens": 10, "output_tokens": 100 * n, "total_tokens": 10 + 100 * n},
    }
    return MockServer.json_answer(recorded, 200, answer)


async def _compact(server: MockServer, request: web.Request) -> web.Response:
    recorded, body, error = await _begin(server, request)
    if error is not None:
        return error
    items = body.get("input") or []
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    kept = [
        {"type": "message", "id": f"msg_{i}", "role": "user", "status": "completed",
         "content": [{"type": "input_text", "text": str(item.get("content"))}]}
        for i, item in enumerate(items)
        if isinstance(item, dict) and item.get("role") == "user"
    ]  # fmt: skip
    summary = base64.b64encode(f"{len(items)} items compacted".encode()).decode()
    answer = {
        "id": "cmp_mock",
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": [*kept, {"type": "compaction", "id": "cmp_item", "encrypted_content": summary}],
        "usage": {
            "input_tokens": 40,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 12,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 52,
        },
    }
    return MockServer.json_answer(recorded, 200, answer)
