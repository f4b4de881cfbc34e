"""Token usage of a response: as the upstream reported it, or counted by the gateway when it did not."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from gatecore._core import count_tokens
from gatecore.api.openai import UsageOnly
from gatecore.request import Usage

_usage_decoder = msgspec.json.Decoder(UsageOnly)


def usage_from_body(body: bytes) -> tuple[Usage | None, str | None]:
    """The `usage` object of a non-streamed OpenAI-format body, if it has one, and its first choice's
    finish reason."""
    try:
        answer = _usage_decoder.decode(body)
    except msgspec.DecodeError:
        return None, None
    choices = answer.choices
    finish_reason = choices[0].finish_reason if choices else None
    usage = answer.usage
    if usage is None:
        return None, finish_reason
    prompt = usage.prompt_tokens_details or usage.input_tokens_details
    completion = usage.completion_tokens_details or usage.output_tokens_details
    input_tokens = usage.prompt_tokens or usage.input_tokens
    output_tokens = usage.completion_tokens or usage.output_tokens
    if not input_tokens and not output_tokens:  # a rerank answer: the tokens it read
        input_tokens = usage.total_tokens
    return Usage(
        input_tokens,
        output_tokens,
        prompt.cached_tokens if prompt else 0,
        completion.reasoning_tokens if completion else 0,
        "upstream",
    ), finish_reason


def count_output_tokens(response_body: bytes, encoding: str) -> int:
    """Tokens of the generated text of a non-streamed chat or completions body."""
    try:
        doc = orjson.loads(response_body)
    except orjson.JSONDecodeError:
        return 0
    if not isinstance(doc, dict):  # e.g. TEI's rerank answer, a JSON array
        return 0
    texts: list[str] = []
    for choice in doc.get("choices") or []:
        if isinstance(choice, dict):
            message = choice.get("message")
            if isinstance(message, dict):
                _collect_text(message.get("content"), texts)
                for call in message.get("tool_calls") or []:
                    if isinstance(call, dict) and isinstance(call.get("function"), dict):
                        _collect_text(call["function"].get("arguments"), texts)
            _collect_text(choice.get("text"), texts)
    return count_tokens("".join(texts), encoding) if texts else 0


def _collect_text(value: Any, into: list[str]) -> None:
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, list):
        for part in value:
            if isinstance(part, str):
                into.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                into.append(part["text"])
