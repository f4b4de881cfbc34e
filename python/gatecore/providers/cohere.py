"""Cohere's v2 Chat API: `POST {base_url}/v2/chat` with a Bearer key, streamed as SSE.

Translation: roles map one to one (system, user, assistant, tool); image parts pass as `image_url`
parts (data or http URLs, as Cohere's vision models take them); assistant tool calls keep their
string arguments, and the assistant's text beside tool calls is sent as Cohere's `tool_plan`
(Cohere's `tool_plan` in answers comes back as content, so a round trip keeps it in place).
Sampling: top_p → `p`, top_k → `k`, stop → `stop_sequences`. Stream events: message-start,
content-delta, tool-plan-delta, tool-call-start/-delta/-end, message-end (finish_reason, usage).
"""

from __future__ import annotations

from typing import Any

import orjson

from gatecore.config.schema import DEFAULT_BASE_URLS, ProviderConfig
from gatecore.errors import InvalidRequest, UpstreamProtocolError
from gatecore.providers.base import StreamDecoder
from gatecore.providers.from_hub_request import (
    NO_LOGPROBS_AUDIO_PREDICTION,
    JsonObject,
    content_parts,
    functions_of,
    max_tokens_of,
    messages_of,
    n_of,
    reject_set,
    response_format_of,
    stop_sequences_of,
    text_of,
    tool_choice_of,
    untranslatable,
)
from gatecore.providers.json_provider import ChatJsonProvider
from gatecore.providers.sse_events import SseEventSplitter
from gatecore.providers.to_hub_bodies import chat_completion_body, decode_json, stream_error, tool_call
from gatecore.providers.to_hub_chunks import DONE, ChunkWriter, usage_object
from gatecore.request import RequestContext
from gatecore.upstream.pool import PoolSet

KIND = "cohere"
_UNSUPPORTED: dict[str, tuple[object, ...]] = NO_LOGPROBS_AUDIO_PREDICTION
_SAMPLING = {
    "temperature": "temperature",
    "top_p": "p",
    "top_k": "k",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}
FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR_TOXIC": "content_filter",
}


def build_chat(doc: JsonObject, model: str, stream: bool) -> JsonObject:
    """The Cohere `/v2/chat` body for an OpenAI chat request."""
    n_of(doc, KIND)
    reject_set(doc, KIND, _UNSUPPORTED)
    messages: list[JsonObject] = []
    for i, message in enumerate(messages_of(doc)):
        role, param = message["role"], f"messages[{i}]"
        content = message.get("content")
        if role in ("system", "developer"):
            messages.append({"role": "system", "content": text_of(content, f"{param}.content")})
        elif role == "user":
            messages.append({"role": "user", "content": _user_content(content, f"{param}.content")})
        elif role == "assistant":
            text = text_of(content, f"{param}.content")
            calls = message.get("tool_calls") or []
            out: JsonObject = {"role": "assistant"}
            if calls:
                out["tool_calls"] = [_call(call, f"{param}.tool_calls[{j}]") for j, call in enumerate(calls)]
                if text:
                    out["tool_plan"] = text
            else:
                out["content"] = text
            messages.append(out)
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                raise InvalidRequest(f"{param}.tool_call_id must be a string.", param=f"{param}.tool_call_id")
            tool_text = text_of(content, f"{param}.content")
            messages.append({"role": "tool", "tool_call_id": call_id, "content": tool_text})
        else:
            raise InvalidRequest(f"{param}.role '{role}' is not supported.", param=f"{param}.role")
    body: JsonObject = {"model": model, "messages": messages, "stream": stream}
    body.update({name: doc[field] for field, name in _SAMPLING.items() if doc.get(field) is not None})
    if (max_tokens := max_tokens_of(doc)) is not None:
        body["max_tokens"] = max_tokens
    if (stop := stop_sequences_of(doc)) is not None:
        body["stop_sequences"] = stop
    functions = functions_of(doc)
    if functions:
        body["tools"] = [{"type": "function", "function": f} for f in functions]
    choice = tool_choice_of(doc)
    if choice is not None and choice[0] == "function":
        raise untranslatable("tool_choice", KIND, "Cohere can require a tool call, not a given tool")
    if choice is not None and choice[0] in ("required", "none") and functions:
        body["tool_choice"] = choice[0].upper()
    kind, schema, _ = response_format_of(doc)
    if kind != "text":
        body["response_format"] = {"type": "json_object", **({"json_schema": schema} if schema else {})}
    return body


def _user_content(content: Any, param: str) -> str | list[JsonObject]:
    if isinstance(content, str):
        return content
    parts: list[JsonObject] = []
    for j, part in enumerate(content_parts(content, param)):
        if part["type"] == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif part["type"] == "image_url" and isinstance(part.get("image_url"), dict):
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"].get("url")}})
        else:
            raise untranslatable(f"{param}[{j}].type", KIND, f"content part type '{part['type']}'")
    return parts


def _call(call: Any, param: str) -> JsonObject:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"{param} must be a function tool call.", param=param)
    arguments = function.get("arguments")
    text = arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {"name": function["name"], "arguments": text},
    }


def cohere_usage(usage: Any) -> JsonObject | None:
    """`usage.tokens` (what the model processed), else `usage.billed_units`, as OpenAI usage."""
    if not isinstance(usage, dict):
        return None
    counts = usage.get("tokens") or usage.get("billed_units")
    if not isinstance(counts, dict):
        return None
    prompt, completion = counts.get("input_tokens"), counts.get("output_tokens")
    return usage_object(
        int(prompt) if isinstance(prompt, int | float) else 0,
        int(completion) if isinstance(completion, int | float) else 0,
    )


def finish_reason(reason: Any) -> str:
    return FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


class CohereStreamDecoder:
    """Cohere v2 SSE events → OpenAI chunks, event by event."""

    def __init__(self, writer: ChunkWriter):
        self.writer = writer
        self.events = SseEventSplitter()
        self.calls: dict[int, int] = {}  # Cohere tool call index → OpenAI tool call index
        self.ended = False

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._event(data) for _, data in self.events.feed(chunk) if data.strip())

    def _event(self, data: bytes) -> bytes:
        doc = decode_json(data, "an event")
        kind = doc.get("type")
        if kind == "error" or (kind is None and "message" in doc):
            raise stream_error(doc.get("message"))
        writer = self.writer
        out = [] if writer.role_sent else [writer.role()]
        message = (doc.get("delta") or {}).get("message") or {}
        if kind == "content-delta":
            text = (message.get("content") or {}).get("text")
            if isinstance(text, str) and text:
                out.append(writer.text(text))
        elif kind == "tool-plan-delta":
            if isinstance(message.get("tool_plan"), str) and message["tool_plan"]:
                out.append(writer.text(message["tool_plan"]))
        elif kind in ("tool-call-start", "tool-call-delta"):
            call = message.get("tool_calls") or {}
            function = call.get("function") or {}
            given = doc.get("index")
            source: int = given if isinstance(given, int) else len(self.calls)
            if kind == "tool-call-start":
                index = self.calls[source] = len(self.calls)
                out.append(
                    writer.tool_call_start(index, str(call.get("id", "")), str(function.get("name", "")))
                )
            elif source not in self.calls:
                raise UpstreamProtocolError("The upstream sent a tool-call delta before its start.")
            arguments = function.get("arguments")
            if isinstance(arguments, str) and arguments:
                out.append(writer.tool_call_arguments(self.calls[source], arguments))
        elif kind == "message-end":
            self.ended = True
            delta = doc.get("delta") or {}
            out.append(writer.finish(finish_reason(delta.get("finish_reason"))))
            usage = cohere_usage(delta.get("usage"))
            if usage is not None:
                out.append(writer.usage(usage))
        return b"".join(out)

    def finish(self) -> bytes:
        if self.events.pending:
            raise UpstreamProtocolError("The upstream stream ended in the middle of an event.")
        if not self.ended:
            raise UpstreamProtocolError("The upstream stream ended before its message-end event.")
        return DONE


class CohereProvider(ChatJsonProvider):
    """Cohere `/v2/chat`."""

    kind = KIND
    path = "/v2/chat"
    error_field = "message"

    def __init__(self, config: ProviderConfig, pools: PoolSet):
        super().__init__(config, pools, DEFAULT_BASE_URLS[KIND], {"accept": "application/json"})

    def chat_body(self, doc: JsonObject, model: str, stream: bool) -> JsonObject:
        return build_chat(doc, model, stream)

    def stream_decoder(self, ctx: RequestContext) -> StreamDecoder | None:
        return CohereStreamDecoder(ChunkWriter(f"chatcmpl-{ctx.request_id}", ctx.client_model))

    def decode_body(self, ctx: RequestContext, body: bytes) -> bytes:
        doc = decode_json(body, "a response")
        message = doc.get("message")
        if not isinstance(message, dict):
            raise UpstreamProtocolError("The upstream response has no message.")
        texts = [
            part["text"]
            for part in message.get("content") or []
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
        calls = []
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                arguments = function.get("arguments")
                text = arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()
                calls.append(tool_call(str(call.get("id", "")), str(function.get("name", "")), text))
        plan = message.get("tool_plan") if isinstance(message.get("tool_plan"), str) else ""
        content = "".join(texts) or plan or (None if calls else "")
        return chat_completion_body(
            f"chatcmpl-{ctx.request_id}",
            ctx.client_model,
            content,
            finish_reason(doc.get("finish_reason")),
            cohere_usage(doc.get("usage")),
            calls,
        )
