"""A loopback upstream speaking Google's Gemini API (generateContent and streamGenerateContent with
alt=sse), written from its API reference.

It checks the `x-goog-api-key` header, that `contents` alternate user/model turns starting with
user, and that every functionResponse names a function called in the turn before. Steered by the
model name (see loopback.py):

| option | effect |
| --- | --- |
| `status=N` | answer N with Google's error shape (`{"error": {"code", "message", "status"}}`) |
| `tools=N` | answer with a text part and functionCall parts for the first N declared functions |
| `reason=R` | finishReason R (default STOP) |
| `cache=N`, `thoughts=N` | usageMetadata cachedContentTokenCount / thoughtsTokenCount (and a thought part) |
| `stream_error` | a stream sends one event, then an event carrying `{"error": ...}` |
| `badjson=N` | the stream's event N carries invalid JSON |
| `no_finish` | the stream never sends finishReason |
| `ctype=application/json`, `ctype=text/html` | a stream request answered 200 with a JSON array or an HTML page |
| `cut=N`, `truncate` | see loopback.send_events |

With `generationConfig.responseMimeType: application/json` the text is `{"answer": 42}`; after
function responses it is `"results: " + <the responses as JSON>`; else `"mock: " + <last user text>`.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .loopback import JsonObject, LoopbackServer, send_events, steering, words

API_KEY = "gm-mock-e2e-key-8e1f"
STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error(status: int, message: str) -> web.Response:
    body = {"error": {"code": status, "message": message, "status": STATUSES.get(status, "UNKNOWN")}}
    return web.json_response(body, status=status)


def _validate(body: JsonObject) -> str | None:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    expected = "user"
    called: set[str] = set()
    for i, content in enumerate(contents):
        if content.get("role") != expected:
            return f"Please ensure that multiturn requests alternate between user and model (contents[{i}])."
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
        for part in parts:
            response = part.get("functionResponse")
            if response is not None and response.get("name") not in called:
                return f"contents[{i}]: functionResponse {response.get('name')} answers no functionCall"
            if not any(
                k in part for k in ("text", "inlineData", "fileData", "functionCall", "functionResponse")
            ):
                return f"contents[{i}]: unknown part {sorted(part)}"
        called = {p["functionCall"]["name"] for p in parts if "functionCall" in p}
        expected = "model" if expected == "user" else "user"
    return None


class GeminiMock(LoopbackServer):
    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{target}", self._generate)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        received = await self.record(request)
        model, _, method = request.match_info["target"].rpartition(":")
        if request.headers.get("x-goog-api-key") != API_KEY:
            return error(400, "API key not valid. Please pass a valid API key.")
        body = received.body_json
        if method not in ("generateContent", "streamGenerateContent") or not isinstance(body, dict):
            return error(404, f"Method {method} not found")
        name, options = steering(model)
        if "status" in options:
            status = int(options["status"])
            return error(status, f"mock {STATUSES.get(status, 'UNKNOWN')} ({status})")
        problem = _validate(body)
        if problem is not None:
            return error(400, problem)
        parts, reason = self._answer(body, options)
        usage = self._usage(body, parts, options)
        if method == "generateContent":
            return web.json_response(self._response(parts, reason, usage, name))
        if request.query.get("alt") != "sse":
            return error(400, "mock only streams with alt=sse")
        if options.get("ctype") == "application/json":
            return web.json_response([self._response(parts, reason, usage, name)])
        if options.get("ctype") == "text/html":
            return web.Response(text="<html><body>Bad gateway</body></html>", content_type="text/html")
        chunks: list[JsonObject] = []
        for part in parts:
            if "text" in part and not part.get("thought"):
                chunks.extend(
                    self._response([{"text": piece}], None, None, name) for piece in words(part["text"])
                )
            else:
                chunks.append(self._response([part], None, None, name))
        if "no_finish" not in options:
            chunks.append(self._response([{"text": ""}], reason, usage, name))
        events = [b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks]
        if "stream_error" in options:
            failure = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
            events = [events[0], b"data: " + json.dumps(failure).encode() + b"\r\n\r\n"]
        if "badjson" in options:
            events[int(options["badjson"])] = b"data: {not json\r\n\r\n"
        return await send_events(request, received, events, options, "text/event-stream")

    @staticmethod
    def _response(
        parts: list[JsonObject], reason: str | None, usage: JsonObject | None, name: str
    ) -> JsonObject:
        candidate: JsonObject = {"content": {"role": "model", "parts": parts}, "index": 0}
        if reason is not None:
            candidate["finishReason"] = reason
        response: JsonObject = {"candidates": [candidate], "modelVersion": name, "responseId": "gem-mock-1"}
        if usage is not None:
            response["usageMetadata"] = usage
        return response

    def _answer(self, body: JsonObject, options: dict[str, str]) -> tuple[list[JsonObject], str]:
        last = body["contents"][-1]["parts"]
        results = [p["functionResponse"] for p in last if "functionResponse" in p]
        config = body.get("generationConfig") or {}
        if config.get("responseMimeType") == "application/json":
            text = json.dumps({"answer": 42})
        elif results:
            text = "results: " + json.dumps(results, sort_keys=True)
        else:
            text = "mock: " + " ".join(p["text"] for p in last if "text" in p)
        parts: list[JsonObject] = []
        if "thoughts" in options:
            parts.append({"text": "thinking about it", "thought": True})
        parts.append({"text": text})
        declarations = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations", [])]
        for i in range(min(int(options.get("tools", "0")), len(declarations))):
            args = {"n": i, "city": "Paris" if i == 0 else "Tokyo"}
            parts.append({"functionCall": {"name": declarations[i]["name"], "args": args}})
        return parts, options.get("reason") or "STOP"

    @staticmethod
    def _usage(body: JsonObject, parts: list[JsonObject], options: dict[str, str]) -> JsonObject:
        def count(parts: list[Any]) -> int:
            return sum(len(p["text"].split()) for p in parts if isinstance(p.get("text"), str))

        prompt = sum(count(c["parts"]) for c in body["contents"])
        prompt += count((body.get("systemInstruction") or {}).get("parts", []))
        output = count([p for p in parts if not p.get("thought")])
        usage: JsonObject = {"promptTokenCount": prompt, "candidatesTokenCount": output}
        if "cache" in options:
            usage["cachedContentTokenCount"] = int(options["cache"])
        if "thoughts" in options:
            usage["thoughtsTokenCount"] = int(options["thoughts"])
        usage["totalTokenCount"] = prompt + output + int(options.get("thoughts", "0"))
        return usage
