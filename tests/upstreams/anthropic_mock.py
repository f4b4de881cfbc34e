"""A loopback upstream speaking Anthropic's Messages API (POST /v1/messages), from its API reference.

It checks what Anthropic checks (x-api-key, anthropic-version, max_tokens, alternating user/assistant
turns starting with user, every tool_result answering a tool_use of the turn before) and answers
deterministically, streaming included. Steered by the model name (see loopback.py):

| option | effect |
| --- | --- |
| `status=N`, `etype=T` | answer N with Anthropic's error shape (type from the status unless `etype`) |
| `retry=V` | with `status`: a `retry-after: V` header, as Anthropic sends with 429 and 529 |
| `tools=N` | answer with a text block and N tool_use blocks (the request's first N tools) |
| `reason=R` | stop_reason R (default end_turn, tool_use with tools) |
| `cache=N` | usage.cache_read_input_tokens = N (and cache_creation_input_tokens = 2) |
| `stream_error` | a stream sends two events, then `event: error` (overloaded_error) |
| `badjson=N` | the stream's event N carries invalid JSON |
| `no_stop` | the stream leaves out message_stop |
| `ctype=application/json`, `ctype=text/html` | a stream request answered 200 with a JSON message or an HTML page |
| `cut=N`, `truncate` | see loopback.send_events |
| `toolong` | answer 400 `invalid_request_error` "prompt is too long: 208310 tokens > 200000 maximum" |
| `remaining=N`, `reset=S` | a whole answer carries Anthropic's rate-limit headers: N requests remaining, resetting S seconds from now (RFC 3339; default 60) |

A request with `tool_choice: {"type": "tool"}` is answered with that tool's input `{"answer": 42}`.
With `thinking` enabled (or adaptive) the answer starts with a thinking block signed by the mock
(its text left empty when `thinking.display` is "omitted"); as Anthropic does, every thinking block
sent back must carry the mock's signature of its text, and in a tool loop the assistant turn before
the tool results must start with one.
Text answers are `"mock: " + <last user text>`, or `"results: " + <tool results>` after tool results.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .loopback import JsonObject, LoopbackServer, Received, send_events, steering, words

API_KEY = "sk-ant-mock-e2e-5c3d"
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"type": "error", "error": {"type": type_, "message": message}}
    return web.json_response(body, status=status, headers=headers)


class Invalid(Exception):
    pass


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")


def sign(thinking: str) -> str:
    """The mock's signature of a thinking text (Anthropic's are opaque; any change breaks them)."""
    return "mocksig-" + hashlib.sha256(thinking.encode()).hexdigest()[:24]


def _thinking_on(body: JsonObject) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def _validate(body: JsonObject) -> None:
    if not isinstance(body.get("max_tokens"), int):
        raise Invalid("max_tokens: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Invalid("messages: at least one message is required")
    expected = "user"
    tool_uses: set[str] = set()
    for i, message in enumerate(messages):
        if message.get("role") != expected:
            raise Invalid(
                f"messages.{i}.role: roles must alternate between user and assistant, starting with user"
            )
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        for block in blocks:
            kind = block.get("type")
            if kind == "tool_result" and block.get("tool_use_id") not in tool_uses:
                raise Invalid(
                    f"messages.{i}: tool_result block(s) without a matching tool_use in the previous turn"
                )
            if kind == "image" and block.get("source", {}).get("type") not in ("base64", "url"):
                raise Invalid(f"messages.{i}: invalid image source")
            if kind not in ("text", "image", "tool_use", "tool_result", "document", "thinking"):
                raise Invalid(f"messages.{i}: unknown content block type {kind}")
            if kind == "thinking" and block.get("signature") != sign(str(block.get("thinking"))):
                raise Invalid(f"messages.{i}: Invalid `signature` in `thinking` block")
        tool_uses = {b["id"] for b in blocks if b.get("type") == "tool_use"}
        expected = "assistant" if expected == "user" else "user"
    last_assistant = messages[-2] if len(messages) > 1 else {}
    content = last_assistant.get("content")
    turn: list[Any] = content if isinstance(content, list) else []
    in_tool_loop = any(b.get("type") == "tool_use" for b in turn)
    if _thinking_on(body) and in_tool_loop and turn[0].get("type") != "thinking":
        raise Invalid(
            f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or `redacted_thinking`, "
            "but found `tool_use`. When `thinking` is enabled, a final `assistant` message must start "
            "with a thinking block"
        )


class AnthropicMock(LoopbackServer):
    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        received = await self.record(request)
        body = received.body_json
        if request.headers.get("x-api-key") != API_KEY:
            return error(401, "authentication_error", "invalid x-api-key")
        if request.headers.get("anthropic-version") != "2023-06-01":
            return error(400, "invalid_request_error", "anthropic-version: header is required")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return error(400, "invalid_request_error", "model: Field required")
        name, options = steering(body["model"])
        if "status" in options:
            status = int(options["status"])
            type_ = options.get("etype") or ERROR_TYPES.get(status, "api_error")
            retry = {"retry-after": options["retry"]} if "retry" in options else None
            return error(status, type_, f"mock {type_} ({status})", retry)
        if "toolong" in options:
            return error(400, "invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum")
        try:
            _validate(body)
        except Invalid as exc:
            return error(400, "invalid_request_error", str(exc))
        content, reason = self._answer(body, options)
        usage = self._usage(body, content, options)
        if body.get("stream") is True and options.get("ctype") == "application/json":
            # An upstream that ignored `stream`: a whole message under its own content type.
            return web.json_response({"id": "msg_mock01", "type": "message", "content": content})
        if body.get("stream") is True and options.get("ctype") == "text/html":
            return web.Response(text="<html><body>Bad gateway</body></html>", content_type="text/html")
        if body.get("stream") is True:
            return await self._stream(request, received, name, content, reason, usage, options)
        message = {
            "id": "msg_mock01",
            "type": "message",
            "role": "assistant",
            "model": name,
            "content": content,
            "stop_reason": reason,
            "stop_sequence": None,
            "usage": usage,
        }
        return web.json_response(message, headers=_rate_limit_headers(options))

    def _answer(self, body: JsonObject, options: dict[str, str]) -> tuple[list[JsonObject], str]:
        choice = body.get("tool_choice") or {}
        if choice.get("type") == "tool" and "tools" not in options:
            return [
                {"type": "tool_use", "id": "toolu_json", "name": choice["name"], "input": {"answer": 42}}
            ], "tool_use"
        last = body["messages"][-1]
        results = (
            [b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]
            if isinstance(last["content"], list)
            else []
        )
        if results:
            text = "results: " + " | ".join(_text(r.get("content", "")) for r in results)
        else:
            text = "mock: " + _text(last["content"])
        content: list[JsonObject] = [{"type": "text", "text": text}]
        if _thinking_on(body):
            omitted = body["thinking"].get("display") == "omitted"
            thought = "" if omitted else f"thinking about {len(body['messages'])} messages"
            content.insert(0, {"type": "thinking", "thinking": thought, "signature": sign(thought)})
        reason = options.get("reason") or "end_turn"
        count = int(options.get("tools", "0"))
        tools = body.get("tools") or []
        for i in range(min(count, len(tools))):
            tool_input = {"n": i, "city": "Paris" if i == 0 else "Tokyo"}
            content.append(
                {"type": "tool_use", "id": f"toolu_{i:02d}", "name": tools[i]["name"], "input": tool_input}
            )
            reason = options.get("reason") or "tool_use"
        return content, reason

    def _usage(self, body: JsonObject, content: list[JsonObject], options: dict[str, str]) -> JsonObject:
        prompt = sum(len(_text(m["content"]).split()) for m in body["messages"]) + len(
            str(body.get("system", "")).split()
        )
        output = sum(len(b.get("text", "").split()) + (3 if b["type"] == "tool_use" else 0) for b in content)
        usage: JsonObject = {"input_tokens": prompt, "output_tokens": output}
        if "cache" in options:
            usage["cache_read_input_tokens"] = int(options["cache"])
            usage["cache_creation_input_tokens"] = 2
        return usage

    async def _stream(
        self,
        request: web.Request,
        received: Received,
        name: str,
        content: list[JsonObject],
        reason: str,
        usage: JsonObject,
        options: dict[str, str],
    ) -> web.StreamResponse:
        def event(kind: str, data: JsonObject) -> bytes:
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

        start_usage = {**usage, "output_tokens": 1}
        message: JsonObject = {
            "id": "msg_mock01",
            "type": "message",
            "role": "assistant",
            "model": name,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": start_usage,
        }
        events = [event("message_start", {"message": message}), event("ping", {})]
        for index, block in enumerate(content):
            if block["type"] == "thinking":
                opening: JsonObject = {"type": "thinking", "thinking": "", "signature": ""}
                events.append(event("content_block_start", {"index": index, "content_block": opening}))
                deltas: list[JsonObject] = (
                    [{"type": "thinking_delta", "thinking": block["thinking"]}] if block["thinking"] else []
                )
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
                events.extend(event("content_block_delta", {"index": index, "delta": d}) for d in deltas)
            elif block["type"] == "text":
                events.append(
                    event(
                        "content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}}
                    )
                )
                events.extend(
                    event(
                        "content_block_delta",
                        {"index": index, "delta": {"type": "text_delta", "text": piece}},
                    )
                    for piece in words(block["text"])
                )
            else:
                start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                events.append(event("content_block_start", {"index": index, "content_block": start}))
                arguments = json.dumps(block["input"])
                third = max(len(arguments) // 3, 1)
                for fragment in ("", arguments[:third], arguments[third : 2 * third], arguments[2 * third :]):
                    delta = {"type": "input_json_delta", "partial_json": fragment}
                    events.append(event("content_block_delta", {"index": index, "delta": delta}))
            events.append(event("content_block_stop", {"index": index}))
        events.append(
            event(
                "message_delta",
                {
                    "delta": {"stop_reason": reason, "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]},
                },
            )
        )
        if "no_stop" not in options:
            events.append(event("message_stop", {}))
        if "stream_error" in options:
            overloaded = {"error": {"type": "overloaded_error", "message": "Overloaded"}}
            events = [*events[:2], event("error", overloaded)]
        if "badjson" in options:
            events[int(options["badjson"])] = b"event: content_block_delta\ndata: {not json\n\n"
        return await send_events(request, received, events, options, "text/event-stream")


def _rate_limit_headers(options: dict[str, str]) -> dict[str, str] | None:
    """Anthropic's `anthropic-ratelimit-*` headers when steered with `remaining=N` (and `reset=S`)."""
    if "remaining" not in options:
        return None
    reset = datetime.fromtimestamp(time.time() + float(options.get("reset") or 60), UTC)
    stamp = reset.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": options["remaining"],
        "anthropic-ratelimit-requests-reset": stamp,
        "anthropic-ratelimit-tokens-limit": "100000",
        "anthropic-ratelimit-tokens-remaining": "99000",
        "anthropic-ratelimit-tokens-reset": stamp,
    }
