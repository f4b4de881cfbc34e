"""Whole OpenAI response bodies and text-completion chunks, written by translating providers.

`ChunkWriter` (to_hub_chunks.py) covers streamed chat; this module covers the rest: the non-streamed
`chat.completion` and `text_completion` bodies, and the `text_completion` chunks of engines that
serve `/v1/completions` natively from a prompt (tgi, triton).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gatecore.errors import UpstreamProtocolError, UpstreamStreamError
from gatecore.providers.upstream_errors import json_object

JsonObject = dict[str, Any]


def tool_call(call_id: str, name: str, arguments: str) -> JsonObject:
    """One OpenAI `tool_calls[]` entry."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def chat_completion_body(
    completion_id: str,
    model: str,
    content: str | None,
    finish_reason: str,
    usage: JsonObject | None,
    tool_calls: list[JsonObject] | None = None,
    reasoning: str | None = None,
) -> bytes:
    """A `chat.completion` body with one choice."""
    message: JsonObject = {"role": "assistant", "content": content, "refusal": None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if tool_calls:
        message["tool_calls"] = tool_calls
    body: JsonObject = {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


def text_completion_body(
    completion_id: str, model: str, text: str, finish_reason: str, usage: JsonObject | None
) -> bytes:
    """A `text_completion` body with one choice (`/v1/completions`)."""
    body: JsonObject = {
        "id": completion_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


class TextChunkWriter:
    """The `text_completion` chunks of one streamed `/v1/completions` answer."""

    __slots__ = ("_head",)

    def __init__(self, completion_id: str, model: str):
        head = orjson.dumps(
            {"id": completion_id, "object": "text_completion", "created": int(time.time()), "model": model}
        )
        self._head = b"data: " + head[:-1] + b',"choices":'

    def text(self, text: str, finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
        return self._head + orjson.dumps([choice]) + b"}\n\n"

    def usage(self, usage: JsonObject) -> bytes:
        return self._head + b'[],"usage":' + orjson.dumps(usage) + b"}\n\n"


def decode_json(body: bytes, what: str) -> JsonObject:
    """An upstream body or event that must be a JSON object (else UpstreamProtocolError)."""
    doc = json_object(body)
    if doc is None:
        snippet = body[:80].decode("utf-8", "replace")
        raise UpstreamProtocolError(f"The upstream sent {what} that is not a JSON object: {snippet!r}.")
    return doc


def stream_error(message: Any) -> UpstreamStreamError:
    """An error the upstream reported inside a stream."""
    text = message if isinstance(message, str) and message else "unknown error"
    return UpstreamStreamError(f"The upstream reported an error mid-stream: {text[:500]}")
