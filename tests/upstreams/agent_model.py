"""An upstream that behaves like the model behind a coding agent, for the real agent CLIs' tests.

On each turn it reads the whole conversation the client replayed: while tools are offered and the
tool it was told to call has not answered yet, it answers with a call to that tool; once the tool's
result is in the conversation, it answers with text that quotes the result (``AgentModel.DONE`` +
the result), so a test can see the round trip completed. A turn with no tools offered (titles,
summaries, quota probes the CLIs send on the side) gets plain text.

It speaks two wire formats, each from its provider's public reference, whole and streamed:
OpenAI Chat Completions (``POST /v1/chat/completions``, tool calls as ``tool_calls`` deltas) and
Anthropic Messages (``POST /v1/messages``, ``tool_use`` blocks with ``input_json_delta``; plus
``count_tokens``). The decision is format-free (``decide``), so other wires (Responses, Gemini) reuse it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .mock_server import JsonObject, MockServer, RecordedRequest

__all__ = ["AgentModel", "Conversation", "ToolPlan", "Turn", "decide"]

CALL_ID_PREFIX = "call_agent_"
"""Every tool call this model makes has an id starting so; a result for one of them ends the task."""


@dataclass(frozen=True)
class ToolPlan:
    """Which tool the model calls, and with what arguments (per tool name, first offered wins)."""

    calls: dict[str, JsonObject]
    """Tool name → its arguments, e.g. ``{"Bash": {"command": "echo hi"}, "shell": {...}}``."""


@dataclass(frozen=True)
class Conversation:
    """What `decide` needs of a request, whatever its wire format."""

    offered_tools: list[str]
    tool_results: dict[str, str]
    """Call id → the result's text, for every tool result in the conversation."""


@dataclass(frozen=True)
class Turn:
    """The model's answer: a tool call (``tool`` set) or text."""

    text: str = ""
    tool: str | None = None
    arguments: JsonObject = field(default_factory=dict)
    call_id: str = ""


def decide(conversation: Conversation, plan: ToolPlan, turn_number: int) -> Turn:
    """The next turn: call the planned tool until its result arrives, then report it as text."""
    ours = {cid: text for cid, text in conversation.tool_results.items() if cid.startswith(CALL_ID_PREFIX)}
    if ours:
        result = next(reversed(ours.values()))
        return Turn(text=f"{AgentModel.DONE} {result.strip()[:200]}")
    for name in conversation.offered_tools:
        if name in plan.calls:
            return Turn(tool=name, arguments=plan.calls[name], call_id=f"{CALL_ID_PREFIX}{turn_number}")
    if conversation.offered_tools:
        return Turn(text=f"no planned tool among {len(conversation.offered_tools)} offered")
    return Turn(text="Agent model here.")


def _text_of(content: Any) -> str:
    """Text of a chat or Anthropic content value: a string, or a list of parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif "content" in part:
                    parts.append(_text_of(part["content"]))
        return "".join(parts)
    return ""


def chat_conversation(body: JsonObject) -> Conversation:
    """The conversation of an OpenAI chat request."""
    tools = [t.get("function", {}).get("name", "") for t in body.get("tools") or [] if isinstance(t, dict)]
    results = {
        str(m.get("tool_call_id", "")): _text_of(m.get("content"))
        for m in body.get("messages") or []
        if isinstance(m, dict) and m.get("role") == "tool"
    }
    return Conversation(offered_tools=tools, tool_results=results)


def anthropic_conversation(body: JsonObject) -> Conversation:
    """The conversation of an Anthropic Messages request."""
    tools = [str(t.get("name", "")) for t in body.get("tools") or [] if isinstance(t, dict)]
    results: dict[str, str] = {}
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                results[str(block.get("tool_use_id", ""))] = _text_of(block.get("content"))
    return Conversation(offered_tools=tools, tool_results=results)


class AgentModel(MockServer):
    """``with AgentModel(ToolPlan({...})) as upstream:`` an agent's model on loopback."""

    thread_name = "agent-model"
    DONE = "AGENT-DONE:"
    """The answer after the tool's result starts so; the CLI prints it."""

    def __init__(self, plan: ToolPlan, model: str = "agent-model") -> None:
        super().__init__()
        self.plan = plan
        self.model = model
        self.turns: list[tuple[str, Turn]] = []
        """(path, the turn answered), in order."""

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_get("/v1/models", self._models)

    def tool_calls(self) -> list[Turn]:
        """Every tool call answered so far."""
        return [turn for _, turn in self.turns if turn.tool]

    def _turn(self, recorded: RecordedRequest, conversation: Conversation) -> Turn:
        turn = decide(conversation, self.plan, len(self.turns))
        self.turns.append((recorded.path, turn))
        return turn

    async def _models(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        return self.json_answer(
            recorded, 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]}
        )

    # -- OpenAI Chat Completions -------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        body = recorded.body_json if isinstance(recorded.body_json, dict) else {}
        turn = self._turn(recorded, chat_conversation(body))
        model = str(body.get("model", self.model))
        usage = {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}
        if turn.tool:
            call = {
                "id": turn.call_id,
                "type": "function",
                "function": {"name": turn.tool, "arguments": json.dumps(turn.arguments)},
            }
            message: JsonObject = {"role": "assistant", "content": None, "tool_calls": [call]}
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": turn.text}
            finish = "stop"
        if not body.get("stream"):
            answer = {
                "id": "chatcmpl-agent",
                "object": "chat.completion",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            }
            return self.json_answer(recorded, 200, answer)

        def chunk(delta: JsonObject, finish_reason: str | None = None) -> JsonObject:
            return {
                "id": "chatcmpl-agent",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }

        events = [chunk({"role": "assistant", "content": ""})]
        if turn.tool:
            arguments = json.dumps(turn.arguments)
            half = len(arguments) // 2
            head = {"index": 0, "id": turn.call_id, "type": "function"}
            events.append(chunk({"tool_calls": [{**head, "function": {"name": turn.tool, "arguments": ""}}]}))
            pieces = (arguments[:half], arguments[half:])
            events += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces]
        else:
            words = turn.text.split(" ")
            events += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
        events.append(chunk({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**chunk({}), "choices": [], "usage": usage})
        payloads = [json.dumps(e).encode() for e in events] + [b"[DONE]"]
        return await self._sse(request, recorded, [b"data: " + p + b"\n\n" for p in payloads], payloads)

    # -- Anthropic Messages ------------------------------------------------------------------------------

    async def _count_tokens(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        return self.json_answer(recorded, 200, {"input_tokens": max(1, len(recorded.body) // 4)})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        body = recorded.body_json if isinstance(recorded.body_json, dict) else {}
        turn = self._turn(recorded, anthropic_conversation(body))
        model = str(body.get("model", self.model))
        if turn.tool:
            block: JsonObject = {
                "type": "tool_use",
                "id": turn.call_id,
                "name": turn.tool,
                "input": turn.arguments,
            }
            stop = "tool_use"
        else:
            block = {"type": "text", "text": turn.text}
            stop = "end_turn"
        if not body.get("stream"):
            answer = {
                "id": "msg_agent",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [block],
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": 50, "output_tokens": 10},
            }
            return self.json_answer(recorded, 200, answer)
        start = {
            "type": "message_start",
            "message": {
                "id": "msg_agent",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 50, "output_tokens": 1},
            },
        }
        events: list[JsonObject] = [start]
        if turn.tool:
            events.append(
                {"type": "content_block_start", "index": 0, "content_block": {**block, "input": {}}}
            )
            arguments = json.dumps(turn.arguments)
            half = len(arguments) // 2
            for piece in (arguments[:half], arguments[half:]):
                delta = {"type": "input_json_delta", "partial_json": piece}
                events.append({"type": "content_block_delta", "index": 0, "delta": delta})
        else:
            events.append(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
            )
            delta = {"type": "text_delta", "text": turn.text}
            events.append({"type": "content_block_delta", "index": 0, "delta": delta})
        events.append({"type": "content_block_stop", "index": 0})
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 10},
            }
        )
        events.append({"type": "message_stop"})
        payloads = [json.dumps(e).encode() for e in events]
        frames = [
            f"event: {e['type']}\ndata: ".encode() + p + b"\n\n"
            for e, p in zip(events, payloads, strict=True)
        ]
        return await self._sse(request, recorded, frames, payloads)

    async def _sse(
        self, request: web.Request, recorded: RecordedRequest, frames: list[bytes], payloads: list[bytes]
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        recorded.status = 200
        for frame, payload in zip(frames, payloads, strict=True):
            await response.write(frame)
            recorded.events.append(payload)
        await response.write_eof()
        recorded.finished.set()
        return response
