"""A loopback upstream speaking Cohere's v2 Chat API (`POST /v2/chat`), from Cohere's API reference.

Non-streamed: `{"id", "finish_reason", "message": {"role", "content": [{"type": "text", "text"}],
"tool_plan", "tool_calls"}, "usage": {"billed_units", "tokens"}}`. Streamed: SSE with `event:` names
and a `type` in each JSON payload: message-start, content-start, content-delta, content-end, or for
tool calls tool-plan-delta, tool-call-start, tool-call-delta (argument fragments), tool-call-end;
then message-end with finish_reason and usage. Requires `Authorization: Bearer <key>`. Errors:
`{"id", "message"}` with the status. Steering: scripted_mock.py (`corrupt`: "bad_json", "no_end",
"error_event", "truncated").
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .scripted_mock import JsonObject, ScriptedUpstream, split_words


def _last_user(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            parts = content if isinstance(content, list) else []
            return "".join(p.get("text", "") for p in parts if isinstance(p, dict))
    return ""


class CohereMock(ScriptedUpstream):
    thread_name = "cohere-mock"

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key

    @property
    def base_url(self) -> str:
        return self.origin

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/chat", self._chat)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        script = self.script_for(recorded)
        if recorded.headers.get("authorization") != f"Bearer {self.api_key}":
            return self.json_answer(recorded, 401, {"id": "e1", "message": "invalid api token"})
        body = recorded.body_json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self.json_answer(
                recorded, 400, {"id": "e2", "message": "invalid request: messages is required"}
            )
        if script.status is not None:
            error = script.error if isinstance(script.error, str) else f"mock error {script.status}"
            return self.json_answer(recorded, script.status, {"id": "e3", "message": error})
        calls = script.tool_calls
        plan = "I will call the tools." if calls else ""
        text = (
            ""
            if calls
            else (script.content if script.content is not None else "mock: " + _last_user(body["messages"]))
        )
        pieces = split_words(text) if text else []
        tokens = {"input_tokens": sum(len(str(m.get("content", "")).split()) for m in body["messages"]),
                  "output_tokens": max(1, len(pieces) + len(calls))}  # fmt: skip
        usage = {
            "billed_units": dict(tokens),
            "tokens": {**tokens, "input_tokens": tokens["input_tokens"] + 10},
        }
        finish = script.finish or ("TOOL_CALL" if calls else "COMPLETE")
        tool_calls: list[JsonObject] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for i, (n, a) in enumerate(calls)
        ]
        if body.get("stream") is not True:
            message: JsonObject = {"role": "assistant"}
            if text:
                message["content"] = [{"type": "text", "text": text}]
            if calls:
                message["tool_plan"] = plan
                message["tool_calls"] = tool_calls
            return self.json_answer(
                recorded, 200, {"id": "resp-1", "finish_reason": finish, "message": message, "usage": usage}
            )
        events: list[JsonObject] = [
            {"id": "resp-1", "type": "message-start",
             "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}
        ]  # fmt: skip
        if pieces:
            events.append(
                {
                    "type": "content-start",
                    "index": 0,
                    "delta": {"message": {"content": {"type": "text", "text": ""}}},
                }
            )
            events += [
                {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": p}}}}
                for p in pieces
            ]
            events.append({"type": "content-end", "index": 0})
        if calls:
            events.append({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": plan}}})
        for i, call in enumerate(tool_calls):
            start = {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            events.append(
                {"type": "tool-call-start", "index": i, "delta": {"message": {"tool_calls": start}}}
            )
            raw = call["function"]["arguments"]
            for j in range(0, len(raw), 5):
                fragment = {"function": {"arguments": raw[j : j + 5]}}
                events.append(
                    {"type": "tool-call-delta", "index": i, "delta": {"message": {"tool_calls": fragment}}}
                )
            events.append({"type": "tool-call-end", "index": i})
        if script.corrupt == "error_event":
            events.append({"type": "error", "message": "internal server error, this has been reported"})
        elif script.corrupt != "no_end":
            events.append({"type": "message-end", "delta": {"finish_reason": finish, "usage": usage}})
        frames = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]
        if script.corrupt == "bad_json":
            frames.insert(1, b'event: content-delta\ndata: {"type": "content-delta", \n\n')
        if script.corrupt == "json_body":  # a whole JSON answer to a stream request
            frames = [json.dumps({"id": "resp-1", "finish_reason": "COMPLETE", "message": {}}).encode()]
        if script.corrupt == "truncated":
            frames[-1] = frames[-1][:-12]
        return await self.stream_frames(request, recorded, script, "text/event-stream", frames)
