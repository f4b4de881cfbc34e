"""OpenAI-format answers (whole and streamed) for the mocks of OpenAI-like providers (Azure, Mistral)."""

from __future__ import annotations

import json
from typing import Any

from .loopback import JsonObject, words


def reply_text(body: JsonObject) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return f"mock: {content}"
    return "mock:"


def completion(model: str, text: str, finish: str, usage: JsonObject) -> JsonObject:
    message = {"role": "assistant", "content": text}
    choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
    return {
        "id": "cmpl-mock",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [choice],
        "usage": usage,
    }


def chunk_events(
    model: str, text: str, finish: str, usage: JsonObject | None, usage_in_last: bool
) -> list[bytes]:
    """Role+content deltas, a finish chunk (carrying usage when `usage_in_last`, as Mistral does), then a
    separate usage chunk when `usage` is given without `usage_in_last` (OpenAI's include_usage), then [DONE]."""

    def chunk(choices: list[Any], **extra: Any) -> bytes:
        obj = {
            "id": "cmpl-mock",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
            "choices": choices,
        }
        return b"data: " + json.dumps({**obj, **extra}).encode() + b"\n\n"

    events = []
    for i, piece in enumerate(words(text)):
        delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
        events.append(chunk([{"index": 0, "delta": delta, "finish_reason": None}]))
    last = [{"index": 0, "delta": {}, "finish_reason": finish}]
    events.append(chunk(last, usage=usage) if usage_in_last else chunk(last))
    if usage is not None and not usage_in_last:
        events.append(chunk([], usage=usage))
    events.append(b"data: [DONE]\n\n")
    return events


def usage_of(body: JsonObject, text: str) -> JsonObject:
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
    output = len(text.split())
    return {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output}
