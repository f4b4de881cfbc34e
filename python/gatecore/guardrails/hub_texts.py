"""Every text of a hub-format (OpenAI) request or answer that a model reads or writes, rewritten in
place by one function: messages (system, user, assistant, tool results; string or text parts;
reasoning), tool call arguments, completions' `prompt`, embeddings' `input`; answers' message content, tool call
arguments and completions' `text`. An Anthropic request is already in this form (translate/)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Rewrite = Callable[[str], str]


def map_request(doc: dict[str, Any], fn: Rewrite) -> bool:
    """Apply `fn` to every text of a request document; True when one changed."""
    changed = False
    messages = doc.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                changed |= _message(message, fn)
    for field in ("prompt", "input"):
        if field in doc:
            value, moved = _strings(doc[field], fn)
            if moved:
                doc[field] = value
                changed = True
    return changed


def map_answer(doc: dict[str, Any], fn: Rewrite, arguments: Rewrite | None = None) -> bool:
    """Apply `fn` to every text of a whole answer (chat or completion), `arguments` (else `fn`) to
    tool calls' arguments; True when one changed."""
    changed = False
    choices = doc.get("choices")
    if not isinstance(choices, list):
        return False
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict):
            changed |= _message(message, fn, arguments)
        text = choice.get("text")
        if isinstance(text, str):
            new = fn(text)
            if new != text:
                choice["text"] = new
                changed = True
    return changed


def _message(message: dict[str, Any], fn: Rewrite, arguments: Rewrite | None = None) -> bool:
    changed = False
    for field in ("reasoning_content", "reasoning"):  # a reasoning model's thinking
        value = message.get(field)
        if isinstance(value, str):
            new = fn(value)
            if new != value:
                message[field] = new
                changed = True
    content = message.get("content")
    if isinstance(content, str):
        new = fn(content)
        if new != content:
            message["content"] = new
            changed = True
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                new = fn(part["text"])
                if new != part["text"]:
                    part["text"] = new
                    changed = True
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                changed |= _arguments(function, arguments or fn)
    function = message.get("function_call")
    if isinstance(function, dict):
        changed |= _arguments(function, arguments or fn)
    return changed


def _arguments(function: dict[str, Any], fn: Rewrite) -> bool:
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        new = fn(arguments)
        if new != arguments:
            function["arguments"] = new
            return True
    return False


def _strings(value: Any, fn: Rewrite) -> tuple[Any, bool]:
    if isinstance(value, str):
        new = fn(value)
        return new, new != value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        new_list = [fn(v) for v in value]
        return new_list, new_list != value
    return value, False
