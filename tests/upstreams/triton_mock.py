"""A loopback upstream speaking Triton's generate extension, from Triton's protocol documentation.

`POST /v2/models/{model}/generate` answers `{"model_name", "model_version", "text_output"}`;
`/generate_stream` answers SSE `data: {"model_name", "model_version", "text_output": <piece>}` per
piece; an inference error mid-stream is `data: {"error": "..."}`; errors before inference are JSON
`{"error": "..."}` with the status. The reply echoes the prompt's last line. Steering:
scripted_mock.py (`corrupt`: "bad_json", "error_event", "truncated").
"""

from __future__ import annotations

import json

from aiohttp import web

from .scripted_mock import ScriptedUpstream, split_words


class TritonMock(ScriptedUpstream):
    thread_name = "triton-mock"

    @property
    def base_url(self) -> str:
        return self.origin

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v2/health/ready", self.health)
        app.router.add_post("/v2/models/{model}/generate", self._generate)
        app.router.add_post("/v2/models/{model}/generate_stream", self._generate)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        script = self.script_for(recorded)
        body = recorded.body_json
        model = request.match_info["model"]
        if not isinstance(body, dict) or not isinstance(body.get("text_input"), str):
            return self.json_answer(recorded, 400, {"error": "missing input 'text_input'"})
        if script.status is not None:
            error = script.error if isinstance(script.error, str) else f"mock error {script.status}"
            return self.json_answer(recorded, script.status, {"error": error})
        prompt: str = body["text_input"]
        text = (
            script.content if script.content is not None else "mock: " + prompt.strip().splitlines()[-1][:40]
        )
        if not request.path.endswith("/generate_stream"):
            return self.json_answer(
                recorded, 200, {"model_name": model, "model_version": "1", "text_output": text}
            )
        events = [{"model_name": model, "model_version": "1", "text_output": p} for p in split_words(text)]
        frames = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events]
        if script.corrupt == "error_event":
            frames.append(b'data: {"error": "in ensemble \'ensemble\', Executor failed"}\n\n')
        if script.corrupt == "bad_json":
            frames.insert(1, b'data: {"text_output": \n\n')
        if script.corrupt == "truncated":
            frames[-1] = frames[-1][:-6]
        return await self.stream_frames(request, recorded, script, "text/event-stream; charset=utf-8", frames)
