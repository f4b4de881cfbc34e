"""The built-in `echo` model: answers in-process, needs no network. For the demo and for tests.

It repeats the last user message back, streams it word by word in OpenAI's chunk format, and reports
usage counted with the same tokenizer the gateway uses.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gatecore._core import count_tokens, replace_json_string_field
from gatecore.config.schema import ProviderConfig
from gatecore.errors import GatewayError, InvalidRequest
from gatecore.providers.base import StreamDecoder, require_chat
from gatecore.providers.upstream_errors import openai_shaped_error
from gatecore.request import CHAT, COMPLETIONS, EMBEDDINGS, RequestContext
from gatecore.upstream.pool import PoolSet
from gatecore.upstream.response import UpstreamResponse
from gatecore.upstream.timeouts import Timeouts


class EchoProvider:
    """Deterministic in-process upstream."""

    def __init__(self, config: ProviderConfig, pools: PoolSet):
        self.name = config.name
        self.tokenizer = config.tokenizer

    async def send(self, ctx: RequestContext, upstream_model: str, timeouts: Timeouts) -> UpstreamResponse:
        if ctx.endpoint.hub not in (CHAT, COMPLETIONS, EMBEDDINGS):
            require_chat(ctx, "echo")  # 400 naming the endpoint: echo serves chat, completions, embeddings
        doc = orjson.loads(ctx.body)
        created = int(time.time())
        rid = f"echo-{ctx.request_id}"
        if ctx.endpoint.hub is EMBEDDINGS:
            return EchoResponse(_embeddings(doc, upstream_model, self.tokenizer), b"application/json")
        text = _last_user_text(doc) if ctx.endpoint.hub is CHAT else _prompt_text(doc)
        prompt_tokens = count_tokens(_all_text(doc), self.tokenizer)
        words = text.split(" ") if text else [""]
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": count_tokens(text, self.tokenizer),
            "total_tokens": 0,
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        chat = ctx.endpoint.hub is CHAT
        if not ctx.stream:
            if chat:
                choice: dict[str, Any] = {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
                obj = "chat.completion"
            else:
                choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
                obj = "text_completion"
            body = {
                "id": rid,
                "object": obj,
                "created": created,
                "model": upstream_model,
                "choices": [choice],
                "usage": usage,
            }
            return EchoResponse(orjson.dumps(body), b"application/json")
        obj = "chat.completion.chunk" if chat else "text_completion"

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            fields = {"id": rid, "object": obj, "created": created, "model": upstream_model}
            return _event({**fields, "choices": choices, **extra})

        events: list[bytes] = []
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            delta: dict[str, Any] = {"index": 0, "finish_reason": None}
            if chat:
                delta["delta"] = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            else:
                delta["text"] = piece
            events.append(chunk([delta]))
        last: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
        last["delta" if chat else "text"] = {} if chat else ""
        events.append(chunk([last]))
        events.append(chunk([], usage=usage))
        events.append(b"data: [DONE]\n\n")
        return EchoResponse(events, b"text/event-stream")

    def is_stream(self, ctx: RequestContext, response: UpstreamResponse) -> bool:
        return ctx.stream and response.content_type == b"text/event-stream"

    def stream_decoder(self, ctx: RequestContext) -> StreamDecoder | None:
        return None  # the events are made in OpenAI's format already

    def decode_body(self, ctx: RequestContext, body: bytes) -> bytes:
        if ctx.upstream_model == ctx.client_model:
            return body
        return replace_json_string_field(body, "model", ctx.client_model) or body

    def decode_error(self, status: int, body: bytes) -> GatewayError:
        return openai_shaped_error(status, body)  # never called: echo does not fail


class EchoResponse:
    """An in-memory UpstreamResponse: one body, or a list of stream events handed out one by one."""

    def __init__(self, body: bytes | list[bytes], content_type: bytes):
        self.status = 200
        self.content_type = content_type
        self._parts = [body] if isinstance(body, bytes) else body

    async def read_all(self, limit: int) -> bytes:
        body = b"".join(self._parts)
        self._parts = []
        return body

    def body_if_complete(self) -> bytes | None:
        return None  # hand the events out one by one, as a real stream would

    async def next_chunk(self) -> bytes | None:
        return self._parts.pop(0) if self._parts else None

    def header(self, name: bytes) -> bytes | None:
        return None

    def abort(self) -> None:
        self._parts = []


def _event(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _last_user_text(doc: dict[str, Any]) -> str:
    for message in reversed(doc.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def _prompt_text(doc: dict[str, Any]) -> str:
    prompt = doc.get("prompt")
    if isinstance(prompt, list):
        return " ".join(p for p in prompt if isinstance(p, str))
    return prompt if isinstance(prompt, str) else ""


def _all_text(doc: dict[str, Any]) -> str:
    if "messages" in doc:
        messages = doc.get("messages") or []
        return "\n".join(_content_text(m.get("content")) for m in messages if isinstance(m, dict))
    return _prompt_text(doc)


def _embeddings(doc: dict[str, Any], model: str, tokenizer: str) -> bytes:
    inputs = doc.get("input")
    items = inputs if isinstance(inputs, list) else [inputs]
    if not all(isinstance(item, str) for item in items):
        raise InvalidRequest("The echo model embeds strings only.", param="input")
    data = []
    tokens = 0
    for i, item in enumerate(items):
        tokens += count_tokens(item, tokenizer)
        # A deterministic 8-dimensional vector from the text's bytes.
        raw = item.encode()
        vector = [((sum(raw[j::8]) % 1000) / 1000.0) for j in range(8)]
        data.append({"object": "embedding", "index": i, "embedding": vector})
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return orjson.dumps(body)
