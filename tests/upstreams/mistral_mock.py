"""A loopback Mistral chat API: POST /v1/chat/completions with Bearer auth, OpenAI-like answers
(written from Mistral's API reference). Like Mistral it rejects fields it does not know (422 with a
`detail` list) — OpenAI's `seed`, `max_completion_tokens`, `stream_options`, `user` — and accepts
tool_choice auto/none/any/required or a named function. Streams end with a finish chunk that carries
usage. Steered by the model name (see loopback.py): `status=N` answers Mistral's error shape
(`{"object": "error", "message", "type", "param", "code"}`).
"""

from __future__ import annotations

from aiohttp import web

from .loopback import LoopbackServer, send_events, steering
from .openai_format import chunk_events, completion, reply_text, usage_of

API_KEY = "mi-mock-e2e-key-77c2"
KNOWN = {
    "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed",
    "response_format", "tools", "tool_choice", "presence_penalty", "frequency_penalty", "n",
    "prediction", "parallel_tool_calls", "safe_prompt",
}  # fmt: skip


class MistralMock(LoopbackServer):
    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        received = await self.record(request)
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return web.json_response({"message": "Unauthorized", "request_id": "r1"}, status=401)
        body = received.body_json
        name, options = steering(body.get("model", ""))
        if "status" in options:
            status = int(options["status"])
            error = {
                "object": "error",
                "message": f"mock mistral {status}",
                "type": "mock_error",
                "param": None,
                "code": str(status),
            }
            return web.json_response(error, status=status)
        extra = sorted(set(body) - KNOWN)
        if extra:
            detail = [
                {"type": "extra_forbidden", "loc": ["body", f], "msg": "Extra inputs are not permitted"}
                for f in extra
            ]
            return web.json_response({"object": "error", "detail": detail}, status=422)
        if body.get("tool_choice") not in (None, "auto", "none", "any", "required") and not isinstance(
            body["tool_choice"], dict
        ):
            return web.json_response(
                {"object": "error", "message": "bad tool_choice", "type": "invalid_request_error"}, status=400
            )
        text = reply_text(body)
        usage = usage_of(body, text)
        if body.get("stream") is True:
            events = chunk_events(name, text, "stop", usage, usage_in_last=True)
            return await send_events(request, received, events, options, "text/event-stream")
        return web.json_response(completion(name, text, "stop", usage))
