"""A loopback upstream speaking TGI's native API, from Text Generation Inference's OpenAPI reference.

`POST /generate` answers `{"generated_text", "details": {"finish_reason", "generated_tokens", "seed"}}`;
`POST /generate_stream` answers SSE `data:{"index", "token": {"id", "text", "logprob", "special"},
"generated_text": null, "details": null}` per token, the last event carrying `generated_text` and
`details` (with `input_length`). Errors: `{"error", "error_type"}` (422 validation, 424 generation,
429 overloaded). The reply echoes the prompt's last line. Steering: scripted_mock.py (`corrupt`:
"bad_json", "no_end", "error_event", "truncated").
"""

from __future__ import annotations

import json

from aiohttp import web

from .scripted_mock import JsonObject, ScriptedUpstream, split_words

ERROR_TYPES = {422: "validation", 424: "generation", 429: "overloaded", 400: "validation"}


class TgiMock(ScriptedUpstream):
    thread_name = "tgi-mock"

    @property
    def base_url(self) -> str:
        return self.origin

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/health", self.health)
        app.router.add_post("/generate", self._generate)
        app.router.add_post("/generate_stream", self._generate)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        script = self.script_for(recorded)
        body = recorded.body_json
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), str):
            return self.json_answer(
                recorded,
                422,
                {"error": "Input validation error: `inputs` must be a string", "error_type": "validation"},
            )
        if script.status is not None:
            error = script.error if isinstance(script.error, str) else f"mock error {script.status}"
            return self.json_answer(
                recorded,
                script.status,
                {"error": error, "error_type": ERROR_TYPES.get(script.status, "generation")},
            )
        prompt: str = body["inputs"]
        text = (
            script.content if script.content is not None else "mock: " + prompt.strip().splitlines()[-1][:40]
        )
        pieces = split_words(text)
        details: JsonObject = {
            "finish_reason": script.finish or "eos_token",
            "generated_tokens": len(pieces) + 1,
            "seed": None,
        }
        if not request.path.endswith("/generate_stream"):
            return self.json_answer(
                recorded, 200, {"generated_text": text, "details": {**details, "prefill": [], "tokens": []}}
            )
        events: list[JsonObject] = [
            {"index": i + 1, "token": {"id": 100 + i, "text": p, "logprob": -0.5, "special": False},
             "generated_text": None, "details": None}
            for i, p in enumerate(pieces)
        ]  # fmt: skip
        end = {"index": len(pieces) + 1, "token": {"id": 2, "text": "</s>", "logprob": -0.1, "special": True},
               "generated_text": text, "details": {**details, "input_length": 11}}  # fmt: skip
        if script.corrupt == "error_event":
            events.append(
                {"error": "Request failed during generation: CUDA out of memory", "error_type": "generation"}
            )
        elif script.corrupt != "no_end":
            events.append(end)
        frames = [b"data:" + json.dumps(e).encode() + b"\n\n" for e in events]
        if script.corrupt == "bad_json":
            frames.insert(1, b'data:{"index": 2, "token": \n\n')
        if script.corrupt == "truncated":
            frames[-1] = frames[-1][:-9]
        return await self.stream_frames(request, recorded, script, "text/event-stream", frames)
