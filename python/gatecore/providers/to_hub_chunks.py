"""OpenAI `chat.completion.chunk` SSE events, written by the stream decoders of translating providers.

One `ChunkWriter` per stream: every event carries the same id, created time and client model, as
OpenAI's own streams do. Tool calls follow OpenAI exactly: the first delta of a call has its index,
id, type and name with empty arguments; later deltas carry only the index and an arguments fragment.
Usage goes in a final `{"choices": [], "usage": {...}}` chunk like OpenAI's include_usage chunk (the
relay hides it from clients that did not ask for it).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


def usage_object(
    prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0, reasoning_tokens: int = 0
) -> dict[str, Any]:
    """An OpenAI `usage` object (details always present, so clients can read them unconditionally)."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
    }


class ChunkWriter:
    """Writes the chunks of one streamed chat completion."""

    __slots__ = ("_head", "role_sent")

    def __init__(self, completion_id: str, model: str, created: int | None = None):
        # The members every chunk starts with, encoded once.
        head = orjson.dumps(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()) if created is None else created,
                "model": model,
            }
        )
        self._head = b"data: " + head[:-1] + b',"choices":'
        self.role_sent = False

    def _event(self, choices: bytes, extra: bytes = b"") -> bytes:
        return self._head + choices + extra + b"}\n\n"

    def _delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        if not self.role_sent:
            delta = {"role": "assistant", **delta}
            self.role_sent = True
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._event(orjson.dumps([choice]))

    def role(self) -> bytes:
        """The first chunk: the assistant role with empty content."""
        return self._delta({"content": ""})

    def text(self, content: str) -> bytes:
        return self._delta({"content": content})

    def reasoning(self, content: str) -> bytes:
        """A reasoning (thinking) fragment, as `reasoning_content` like DeepSeek/vLLM streams carry it."""
        return self._delta({"reasoning_content": content})

    def reasoning_signature(self, signature: str) -> bytes:
        """The signature that ends an Anthropic thinking block (gatecore's `reasoning_signature`)."""
        return self._delta({"reasoning_signature": signature})

    def tool_call_start(self, index: int, call_id: str, name: str) -> bytes:
        call = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        return self._delta({"tool_calls": [call]})

    def tool_call_arguments(self, index: int, fragment: str) -> bytes:
        return self._delta({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})

    def finish(self, finish_reason: str) -> bytes:
        return self._delta({}, finish_reason)

    def usage(self, usage: dict[str, Any]) -> bytes:
        return self._event(b"[]", b',"usage":' + orjson.dumps(usage))
