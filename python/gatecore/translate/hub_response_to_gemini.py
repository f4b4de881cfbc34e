"""OpenAI `chat.completion` → Gemini `GenerateContentResponse`, and the pieces the stream encoder
shares with it.

- `finishReason`: stop and tool_calls → STOP (Gemini ends a function call with STOP), length →
  MAX_TOKENS, content_filter (or a refusal) → SAFETY.
- `usageMetadata`: `promptTokenCount` = prompt_tokens (both count cached tokens), `candidatesTokenCount`
  = completion_tokens - reasoning tokens, `thoughtsTokenCount` = reasoning tokens,
  `cachedContentTokenCount` = cached tokens; `totalTokenCount` their sum.
- each tool call becomes a `functionCall` part with its `id` (the client sends it back in its
  `functionResponse`); reasoning becomes a `thought: true` text part when the client asked for
  thoughts (`thinkingConfig.includeThoughts`).
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from gatecore.api.openai_chat_response import ChatCompletion, ResponseMessage
from gatecore.errors import UpstreamProtocolError
from gatecore.request import Usage

_completion = msgspec.json.Decoder(ChatCompletion)
_FINISH = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}


def finish_reason(reason: str | None) -> str:
    """Gemini's finishReason for an OpenAI finish reason."""
    return _FINISH.get(reason or "stop", "OTHER")


def usage_metadata(usage: Usage) -> dict[str, int]:
    """Gemini's `usageMetadata` for tokens counted the OpenAI way."""
    thoughts = min(usage.reasoning_tokens, usage.output_tokens)
    out = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": usage.output_tokens - thoughts,
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
    }
    if usage.cached_tokens:
        out["cachedContentTokenCount"] = min(usage.cached_tokens, usage.input_tokens)
    if thoughts:
        out["thoughtsTokenCount"] = thoughts
    return out


def function_call_part(call_id: str | None, name: str | None, arguments: str | None) -> dict[str, Any]:
    """A `functionCall` part for an OpenAI tool call (its JSON arguments as Gemini's `args` object)."""
    try:
        args = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        raise UpstreamProtocolError(
            f"The model's arguments for the function '{(name or '')[:60]}' are not a JSON object."
        )
    call: dict[str, Any] = {"name": name or "", "args": args}
    if call_id:
        call["id"] = call_id
    return {"functionCall": call}


def response_from_completion(body: bytes, model: str, request_id: str, thoughts: bool) -> dict[str, Any]:
    """The GenerateContentResponse for a whole OpenAI chat completion body."""
    try:
        completion = _completion.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise UpstreamProtocolError("The upstream's answer is not a valid chat completion.") from None
    if not completion.choices:
        raise UpstreamProtocolError("The upstream's answer has no choices.")
    candidates = []
    for choice in completion.choices:
        message = choice.message or ResponseMessage()
        reason = finish_reason(choice.finish_reason)
        if message.refusal and not message.content:
            reason = "SAFETY"
        candidate: dict[str, Any] = {"content": {"parts": _parts(message, thoughts), "role": "model"}}
        candidate["finishReason"] = reason
        candidate["index"] = choice.index
        candidates.append(candidate)
    counted = Usage()
    usage = completion.usage
    if usage is not None:
        counted.input_tokens = usage.prompt_tokens
        counted.output_tokens = usage.completion_tokens
        if usage.prompt_tokens_details is not None:
            counted.cached_tokens = usage.prompt_tokens_details.cached_tokens
        if usage.completion_tokens_details is not None:
            counted.reasoning_tokens = usage.completion_tokens_details.reasoning_tokens
    return {
        "candidates": candidates,
        "usageMetadata": usage_metadata(counted),
        "modelVersion": model,
        "responseId": completion.id or request_id,
    }


def _parts(message: ResponseMessage, thoughts: bool) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    reasoning = message.reasoning_content or message.reasoning
    if thoughts and reasoning:
        parts.append({"text": reasoning, "thought": True})
    text = message.content or message.refusal
    if text:
        parts.append({"text": text})
    for call in message.tool_calls or ():
        function = call.function
        name = function.name if function is not None else None
        arguments = function.arguments if function is not None else None
        parts.append(function_call_part(call.id, name, arguments))
    if not parts:
        parts.append({"text": ""})
    return parts
