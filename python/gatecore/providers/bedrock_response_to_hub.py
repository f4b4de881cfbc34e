"""Bedrock Converse answers → OpenAI: the whole answer body, usage and stop reasons (shared with the
stream decoder in bedrock.py)."""

from __future__ import annotations

from typing import Any

import orjson

from gatecore.errors import UpstreamProtocolError
from gatecore.providers.from_hub_request import JsonObject
from gatecore.providers.to_hub_bodies import chat_completion_body, tool_call
from gatecore.providers.to_hub_chunks import usage_object

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    return STOP_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def converse_usage(usage: Any) -> JsonObject | None:
    """Converse `usage` (inputTokens, outputTokens, cacheReadInputTokens) as OpenAI usage."""
    if not isinstance(usage, dict):
        return None

    def count(name: str) -> int:
        value = usage.get(name)
        return value if isinstance(value, int) else 0

    cached = count("cacheReadInputTokens")
    # Bedrock counts cache reads and writes apart from inputTokens; OpenAI's prompt_tokens includes them.
    prompt = count("inputTokens") + cached + count("cacheWriteInputTokens")
    return usage_object(prompt, count("outputTokens"), cached)


def decode_converse(body: JsonObject, completion_id: str, model: str) -> bytes:
    """A Converse answer as an OpenAI chat.completion body."""
    output = body.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise UpstreamProtocolError("The upstream answer has no output message.")
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[JsonObject] = []
    for block in message["content"]:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            arguments = orjson.dumps(use.get("input") or {}).decode()
            calls.append(tool_call(str(use.get("toolUseId", "")), str(use.get("name", "")), arguments))
        elif isinstance(block.get("reasoningContent"), dict):
            text = (block["reasoningContent"].get("reasoningText") or {}).get("text")
            if isinstance(text, str):
                reasoning.append(text)
    return chat_completion_body(
        completion_id,
        model,
        "".join(texts) if texts or not calls else None,
        finish_reason(body.get("stopReason")),
        converse_usage(body.get("usage")),
        calls,
        "".join(reasoning) or None,
    )
