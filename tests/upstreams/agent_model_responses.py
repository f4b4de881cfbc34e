"""The agent model (agent_model.py) on OpenAI's Responses wire: `POST /v1/responses`, whole and
streamed (the reference's event sequence, openai_responses.py), for Codex CLI's pass-through test.

The decision is agent_model's `decide`: the tools offered are the request's `function` (and
`custom`) tools, the results its `function_call_output` (and `custom_tool_call_output`) items.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .agent_model import AgentModel, Conversation, _text_of
from .mock_server import JsonObject
from .openai_responses import stream_events


def responses_conversation(body: JsonObject) -> Conversation:
    """The conversation of a Responses request."""
    tools = [
        str(t.get("name", ""))
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("type") in ("function", "custom")
    ]
    given = body.get("input")
    items = given if isinstance(given, list) else []
    results = {
        str(item.get("call_id", "")): _text_of(item.get("output"))
        for item in items
        if isinstance(item, dict) and item.get("type") in ("function_call_output", "custom_tool_call_output")
    }
    return Conversation(offered_tools=tools, tool_results=results)


class AgentModelResponses(AgentModel):
    """``with AgentModelResponses(ToolPlan({...})) as upstream:`` the agent's model speaking Responses."""

    thread_name = "agent-model-responses"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/responses", self._responses)
        super().add_routes(app)

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        body = recorded.body_json if isinstance(recorded.body_json, dict) else {}
        turn = self._turn(recorded, responses_conversation(body))
        n = len(self.turns)
        output: list[Any]
        if turn.tool:
            output = [{"id": f"fc_agent_{n}", "type": "function_call", "status": "completed",
                       "call_id": turn.call_id, "name": turn.tool, "arguments": json.dumps(turn.arguments)}]  # fmt: skip
        else:
            part = {"type": "output_text", "text": turn.text, "annotations": [], "logprobs": []}
            output = [{"id": f"msg_agent_{n}", "type": "message", "status": "completed", "role": "assistant",
                       "content": [part]}]  # fmt: skip
        response = {
            "id": f"resp_agent_{n}", "object": "response", "created_at": 1, "status": "completed", "error": None,
            "incomplete_details": None, "model": body.get("model", self.model), "output": output,
            "usage": {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 10,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 60},
        }  # fmt: skip
        if not body.get("stream"):
            return self.json_answer(recorded, 200, response)
        events = [
            {"type": name, "sequence_number": i, **data}
            for i, (name, data) in enumerate(stream_events(response))
        ]
        payloads = [json.dumps(e).encode() for e in events]
        frames = [
            f"event: {e['type']}\ndata: ".encode() + p + b"\n\n"
            for e, p in zip(events, payloads, strict=True)
        ]
        return await self._sse(request, recorded, frames, payloads)
