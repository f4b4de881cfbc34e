"""OpenAI `chat.completion` → Anthropic `Message`, and the pieces the stream encoder shares with it.

- `stop_reason`: finish_reason stop → end_turn, or stop_sequence when the upstream names the stop
  string it matched (vLLM and SGLang do, in `stop_reason`); length → max_tokens; tool_calls →
  tool_use; content_filter → refusal.
- usage: Anthropic's `input_tokens` excludes cache reads, OpenAI's `prompt_tokens` includes them, so
  input_tokens = prompt_tokens - cached_tokens and cache_read_input_tokens = cached_tokens.
- `id`: `msg_` + the upstream's completion id (so logs on both sides can be matched).
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from gatecore.api.openai_chat_response import ChatCompletion, ResponseMessage
from gatecore.errors import UpstreamProtocolError
from gatecore.request import Usage

_completion = msgspec.json.Decoder(ChatCompletion)
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(
    finish_reason: str | None, matched: str | int | None, stop_sequences: tuple[str, ...]
) -> tuple[str, str | None]:
    """Anthropic's `(stop_reason, stop_sequence)` for an OpenAI finish reason."""
    if finish_reason == "stop" and isinstance(matched, str) and matched in stop_sequences:
        return "stop_sequence", matched
    return _STOP_REASONS.get(finish_reason or "stop", "end_turn"), None


def usage_object(usage: Usage) -> dict[str, int]:
    """Anthropic's `usage` for tokens counted the OpenAI way."""
    cached = min(usage.cached_tokens, usage.input_tokens)
    return {
        "input_tokens": usage.input_tokens - cached,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": cached,
    }


def message_id(upstream_id: str, request_id: str) -> str:
    """Anthropic's `msg_…` id for the hub answer's id (an Anthropic upstream's own id kept as it is)."""
    if upstream_id.startswith("msg_"):
        return upstream_id
    return "msg_" + (upstream_id.removeprefix("chatcmpl-") or request_id)


def tool_input(arguments: str | None, name: str | None) -> Any:
    """A tool call's JSON arguments as the object Anthropic's `input` is."""
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise UpstreamProtocolError(
            f"The model's arguments for the tool '{(name or '')[:60]}' are not a JSON object."
        )
    return value


def message_from_completion(
    body: bytes, model: str, request_id: str, stop_sequences: tuple[str, ...], thinking: bool
) -> dict[str, Any]:
    """The Anthropic Message for a whole OpenAI chat completion body."""
    try:
        completion = _completion.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise UpstreamProtocolError("The upstream's answer is not a valid chat completion.") from None
    if not completion.choices or completion.choices[0].message is None:
        raise UpstreamProtocolError("The upstream's answer has no message.")
    choice = completion.choices[0]
    assert choice.message is not None
    reason, sequence = stop_reason(choice.finish_reason, choice.stop_reason, stop_sequences)
    if choice.message.refusal and not choice.message.content:
        reason = "refusal"
    usage = completion.usage
    counted = Usage()
    if usage is not None:
        counted.input_tokens = usage.prompt_tokens
        counted.output_tokens = usage.completion_tokens
        if usage.prompt_tokens_details is not None:
            counted.cached_tokens = usage.prompt_tokens_details.cached_tokens
    return {
        "id": message_id(completion.id, request_id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content_blocks(choice.message, thinking),
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": usage_object(counted),
    }


def content_blocks(message: ResponseMessage, thinking: bool) -> list[dict[str, Any]]:
    """Thinking (when the client asked for it), text, then one tool_use block per call, in order."""
    blocks: list[dict[str, Any]] = []
    reasoning = message.reasoning_content or message.reasoning
    signature = message.reasoning_signature or ""
    if thinking and (reasoning or signature):
        blocks.append({"type": "thinking", "thinking": reasoning or "", "signature": signature})
    text = message.content or message.refusal
    if text:
        blocks.append({"type": "text", "text": text})
    for call in message.tool_calls or ():
        function = call.function
        name = function.name if function is not None else None
        arguments = function.arguments if function is not None else None
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id or "",
                "name": name or "",
                "input": tool_input(arguments, name),
            }
        )
    return blocks


def message_events(message: dict[str, Any]) -> bytes:
    """A whole Message as Anthropic's event stream (for a stream request the upstream answered whole)."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**message["usage"], "output_tokens": 0}
    parts = [_event("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        deltas: list[dict[str, Any]]
        if kind == "text":
            opening: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": block["text"]}]
        elif kind == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": block["thinking"]}]
            if block["signature"]:
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            opening = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": orjson.dumps(block["input"]).decode()}]
        parts.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opening},
            )
        )
        parts.extend(
            _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            for delta in deltas
        )
        parts.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    final = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    parts.append(
        _event("message_delta", {"type": "message_delta", "delta": final, "usage": message["usage"]})
    )
    parts.append(_event("message_stop", {"type": "message_stop"}))
    return b"".join(parts)


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
