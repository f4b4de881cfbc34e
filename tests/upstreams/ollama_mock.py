"""A loopback upstream speaking Ollama's native chat API (`POST /api/chat`), from Ollama's API docs.

Non-streamed: one JSON object with `message`, `done: true`, `done_reason`, `prompt_eval_count` and
`eval_count`. Streamed (`"stream": true`, Ollama's default): `application/x-ndjson`, one object per
line with a `message` fragment and `done: false`, then a final line with an empty message,
`done: true`, `done_reason` and the counts. Tool calls come whole, arguments as JSON objects, in a
`message.tool_calls` array. Errors: `{"error": "..."}` with the HTTP status. Steering: see scripted_mock.py
(`corrupt`: "bad_json" a broken line, "no_done" no final line, "error_line" an `{"error"}` line).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .scripted_mock import JsonObject, ScriptedUpstream, last_user_text, split_words

CREATED_AT = "2024-07-22T20:33:28.123648Z"


class OllamaMock(ScriptedUpstream):
    thread_name = "ollama-mock"

    @property
    def base_url(self) -> str:
        return self.origin

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/version", self.health)
        app.router.add_post("/api/chat", self._chat)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        script = self.script_for(recorded)
        body = recorded.body_json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self.json_answer(recorded, 400, {"error": "invalid request: missing messages"})
        if script.status is not None:
            error = script.error if script.error is not None else {"error": f"mock error {script.status}"}
            return self.json_answer(recorded, script.status, error)
        model = body.get("model")
        text = script.content if script.content is not None else "mock: " + last_user_text(body["messages"])
        calls = [{"function": {"name": n, "arguments": a}} for n, a in script.tool_calls]
        if calls:
            text = ""
        prompt_count = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        pieces = split_words(text)
        final: JsonObject = {
            "model": model,
            "created_at": CREATED_AT,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": script.finish or "stop",
            "total_duration": 4883583458,
            "load_duration": 1334875,
            "prompt_eval_count": prompt_count,
            "prompt_eval_duration": 342546000,
            "eval_count": len(pieces),
            "eval_duration": 4535599000,
        }
        if body.get("stream", True) is False:
            message: JsonObject = {"role": "assistant", "content": text}
            if calls:
                message["tool_calls"] = calls
            return self.json_answer(recorded, 200, {**final, "message": message})
        lines: list[Any] = [
            {
                "model": model,
                "created_at": CREATED_AT,
                "message": {"role": "assistant", "content": p},
                "done": False,
            }
            for p in pieces
            if p
        ]
        for call in calls:  # each whole call in its own line, as Ollama streams them
            message = {"role": "assistant", "content": "", "tool_calls": [call]}
            lines.append({"model": model, "created_at": CREATED_AT, "message": message, "done": False})
        if script.corrupt == "error_line":
            lines.append({"error": "an error was encountered while running the model"})
        elif script.corrupt != "no_done":
            lines.append(final)
        frames = [json.dumps(line).encode() + b"\n" for line in lines]
        if script.corrupt == "html":
            frames = [b"<html><body>502 Bad Gateway</body></html>\n"]
        if script.corrupt == "bad_json":
            frames.insert(1, b'{"model": "m", "message": {"content": "x"\n')
        return await self.stream_frames(request, recorded, script, "application/x-ndjson", frames)
