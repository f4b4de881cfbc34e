"""What the OpenAI mock answers, from OpenAI's API reference: chat completions and legacy completions
(whole, or as the stream's events in OpenAI's framing), embeddings, and the texts they are made of."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import struct
import time
from typing import Any

from .mock_server import JsonObject
from .openai_knobs import MockOptions, default_error, finish_reason, tool_call_id
from .openai_requests import (
    all_message_text,
    count_words,
    embedding_inputs,
    last_user_text,
    prompt_text,
    validate_chat,
)

CREATED = 1_700_000_000
MOCK_MODELS = ("upstream-model-1", "upstream-model-2", "text-embedding-mock")
DEFAULT_EMBEDDING_DIMS = 8
_TOKEN_RE = re.compile(r"\S+\s*|\s+")


def tool_call_fragments(arguments: str, pieces: int = 3) -> list[str]:
    """The argument fragments a stream sends for one tool call; their concatenation is ``arguments``."""
    size = max(1, -(-len(arguments) // pieces))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def split_tokens(text: str) -> list[str]:
    """Split text into the content pieces a stream sends; their concatenation is ``text``."""
    return _TOKEN_RE.findall(text) or [""]


def expected_embedding(text: str, dims: int = DEFAULT_EMBEDDING_DIMS) -> list[float]:
    """The vector the mock answers for ``text``: values exact in float32, so base64 round-trips."""
    digest = b""
    counter = 0
    while len(digest) < dims:
        digest += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    return [(b - 128) / 128 for b in digest[:dims]]


class OpenAIAnswers:
    """Builds one mock's answers; ids are numbered per mock (``chatcmpl-mock00000001``, ...)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def answer(self, kind: str, body: JsonObject, opts: MockOptions) -> tuple[list[str], JsonObject]:
        """The content pieces of a chat or completion answer and its usage (the mock counts words)."""
        if kind == "chat":
            messages = validate_chat(body)
            asked, reply_to = all_message_text(messages), last_user_text(messages)
        else:
            asked = reply_to = prompt_text(body)
        if opts.chunks is not None:
            pieces = [f"tok{i} " for i in range(max(opts.chunks, 0))]
        else:
            pieces = split_tokens(opts.content if opts.content is not None else "mock: " + reply_to)
        prompt_tokens = max(1, count_words(asked))
        completion_tokens = len(pieces)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return pieces, usage

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-mock{next(self._ids):08d}"

    def whole_response(
        self, kind: str, body: JsonObject, pieces: list[str], usage: JsonObject, opts: MockOptions
    ) -> JsonObject:
        content = "".join(pieces)
        obj: JsonObject
        if kind == "chat":
            message: JsonObject = {"role": "assistant", "content": content, "refusal": None}
            if opts.tool_calls:
                if opts.content is None:
                    message["content"] = None
                message["tool_calls"] = [
                    {
                        "id": tool_call_id(i, call),
                        "type": "function",
                        "function": {"name": call.get("name"), "arguments": call.get("arguments", "")},
                    }
                    for i, call in enumerate(opts.tool_calls)
                ]
            if opts.reasoning is not None:
                message["reasoning_content"] = opts.reasoning
            choice: JsonObject = {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(opts),
            }
            if opts.stop_reason is not None:
                choice["stop_reason"] = opts.stop_reason
            obj = {
                "id": self._new_id("chatcmpl"),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [choice],
                "system_fingerprint": "fp_mock",
            }
        else:
            obj = {
                "id": self._new_id("cmpl"),
                "object": "text_completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [{"text": content, "index": 0, "logprobs": None, "finish_reason": "stop"}],
                "system_fingerprint": "fp_mock",
            }
        if not opts.no_usage:
            obj["usage"] = usage
        return obj

    def stream_events(
        self, kind: str, body: JsonObject, pieces: list[str], usage: JsonObject, opts: MockOptions
    ) -> list[JsonObject]:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        send_usage = include_usage and not opts.no_usage
        if kind == "chat":
            base: JsonObject = {
                "id": self._new_id("chatcmpl"),
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body["model"],
                "system_fingerprint": "fp_mock",
            }

            def choice(delta: JsonObject, finish: str | None) -> JsonObject:
                return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

            choices = [choice({"role": "assistant", "content": "", "refusal": None}, None)]
            if opts.reasoning is not None:
                choices += [choice({"reasoning_content": p}, None) for p in split_tokens(opts.reasoning)]
            if not opts.tool_calls or opts.content is not None:
                choices += [choice({"content": p}, None) for p in pieces]
            for i, call in enumerate(opts.tool_calls):
                # OpenAI's framing: the first delta of a call has its id, type and name with empty
                # arguments; the arguments follow in fragments that carry only the index.
                first = {
                    "index": i,
                    "id": tool_call_id(i, call),
                    "type": "function",
                    "function": {"name": call.get("name"), "arguments": ""},
                }
                choices.append(choice({"tool_calls": [first]}, None))
                for fragment in tool_call_fragments(str(call.get("arguments", ""))):
                    delta = {"tool_calls": [{"index": i, "function": {"arguments": fragment}}]}
                    choices.append(choice(delta, None))
            if not opts.no_finish:
                last = choice({}, finish_reason(opts))
                if opts.stop_reason is not None:
                    last["stop_reason"] = opts.stop_reason
                choices.append(last)
        else:
            base = {
                "id": self._new_id("cmpl"),
                "object": "text_completion",
                "created": int(time.time()),
                "model": body["model"],
                "system_fingerprint": "fp_mock",
            }
            choices = [{"text": p, "index": 0, "logprobs": None, "finish_reason": None} for p in pieces]
            choices.append({"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"})
        events: list[JsonObject] = []
        for c in choices:
            event = {**base, "choices": [c]}
            if include_usage:
                event["usage"] = None
            events.append(event)
        if send_usage:
            events.append({**base, "choices": [], "usage": usage})
        return events

    def stream_payloads(
        self, kind: str, body: JsonObject, pieces: list[str], usage: JsonObject, opts: MockOptions
    ) -> list[bytes]:
        """The ``data:`` payload of every event of a stream, ``[DONE]`` last unless ``no_done``."""
        payloads = [json.dumps(e).encode() for e in self.stream_events(kind, body, pieces, usage, opts)]
        if opts.bad_json_after is not None:
            payloads.insert(opts.bad_json_after, b'{"id": "chatcmpl-broken", "choices": [')
        if opts.error_event_after is not None:
            error = opts.error if opts.error is not None else default_error(500)
            del payloads[opts.error_event_after :]
            payloads.append(json.dumps({"error": error}).encode())
        if not opts.no_done:
            payloads.append(b"[DONE]")
        return payloads

    def embedding_response(self, body: JsonObject) -> JsonObject:
        inputs = embedding_inputs(body)
        dims = body.get("dimensions")
        size = dims if isinstance(dims, int) and not isinstance(dims, bool) and 0 < dims <= 4096 else 8
        as_base64 = body.get("encoding_format") == "base64"
        data: list[JsonObject] = []
        for i, text in enumerate(inputs):
            vector = expected_embedding(text, size)
            value: Any = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode() if as_base64 else vector
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(max(1, count_words(t)) for t in inputs)
        return {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
