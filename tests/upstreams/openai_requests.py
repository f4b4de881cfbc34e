"""What the OpenAI mock checks of a request, the way OpenAI rejects it (400 with ``param``), and the
texts it reads out of chat, completion and embedding requests."""

from __future__ import annotations

from typing import Any

from .mock_server import JsonObject


class BadRequest(Exception):
    """The request is invalid the way OpenAI would reject it (answered 400)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> JsonObject:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def count_words(text: str) -> int:
    return len(text.split())


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(
                part.get("text", "")
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
    return ""


def all_message_text(messages: list[Any]) -> str:
    texts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(str(part["text"]) for part in content if isinstance(part, dict) and "text" in part)
    return " ".join(texts)


def validate_chat(body: JsonObject) -> list[Any]:
    """The messages of a chat request, checked the way OpenAI checks them."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"Invalid value for 'messages[{i}]'", f"messages[{i}]")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise BadRequest(f"Invalid type for 'messages[{i}].content'", f"messages[{i}].content")
    return messages


def prompt_text(body: JsonObject) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return " ".join(prompt)
    if isinstance(prompt, list) and all(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
        return " ".join(str(p) for p in prompt)
    raise BadRequest("'prompt' must be a string, an array of strings or an array of tokens", "prompt")


def embedding_inputs(body: JsonObject) -> list[str]:
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return list(value)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return [" ".join(str(v) for v in value)]
        if all(isinstance(v, list) for v in value):
            return [" ".join(str(t) for t in v) for v in value]
    raise BadRequest("'input' must be a string or a non-empty array", "input")
