"""OpenAI `chat.completion` bodies and `chat.completion.chunk` events, as the client encoders read them.

The hub format of every response (translation contract): whatever the upstream, the relay hands the
client encoder these shapes. Only the fields the encoders need are declared; `usage` is left out of
chunks because the relay captures it in Rust.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gatecore.api.openai import Usage


class FunctionCall(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class ToolCall(msgspec.Struct):
    id: str | None = None
    function: FunctionCall | None = None
    index: int = 0  # chunks only


class ResponseMessage(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None  # DeepSeek, vLLM
    reasoning: str | None = None  # OpenRouter, Ollama /v1
    # gatecore's own: the signature of an Anthropic upstream's thinking, so an Anthropic client can
    # send the block back (providers/anthropic_stream_to_hub.py); other upstreams never set it.
    reasoning_signature: str | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None


class Choice(msgspec.Struct):
    message: ResponseMessage | None = None
    finish_reason: str | None = None
    # vLLM and SGLang name what ended the output: the matched stop string (or a token id).
    stop_reason: str | int | None = None
    index: int = 0


class ChatCompletion(msgspec.Struct):
    id: str = ""
    choices: list[Choice] = msgspec.field(default_factory=list)
    usage: Usage | None = None


class ChunkChoice(msgspec.Struct):
    delta: ResponseMessage | None = None
    finish_reason: str | None = None
    stop_reason: str | int | None = None
    index: int = 0


class ChatCompletionChunk(msgspec.Struct):
    id: str = ""
    choices: list[ChunkChoice] = msgspec.field(default_factory=list)
    error: Any = None  # an upstream's mid-stream error event: {"error": {...}} (or a bare string)
