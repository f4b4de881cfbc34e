"""Ollama's native chat API: `POST {base_url}/api/chat`, streamed as NDJSON.

Translation: system/developer messages become `system` messages; images go as base64 strings in a
message's `images` (Ollama takes no URLs); assistant tool calls carry arguments as JSON objects and
tool results are `tool` messages naming the function (`tool_name`); sampling goes in `options`
(`num_predict` is max_tokens); `response_format` becomes `format` ("json" or the schema). Ollama
sends whole tool calls, each emitted as one OpenAI tool-call start plus its complete arguments.
"""

from __future__ import annotations

import orjson

from gatecore.errors import InvalidRequest, UpstreamProtocolError
from gatecore.providers.base import StreamDecoder
from gatecore.providers.from_hub_request import (
    NO_LOGPROBS_AUDIO_PREDICTION,
    JsonObject,
    arguments_of,
    content_parts,
    functions_of,
    image_url_of,
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
from gatecore.providers.to_hub_bodies import chat_completion_body, decode_json, stream_error, tool_call
from gatecore.providers.to_hub_chunks import DONE, ChunkWriter, usage_object
from gatecore.request import RequestContext

KIND = "ollama"
# Request fields with no Ollama equivalent, and the value that means "not used".
_UNSUPPORTED: dict[str, tuple[object, ...]] = NO_LOGPROBS_AUDIO_PREDICTION
# OpenAI sampling fields → Ollama `options` names (top_k and min_p are extensions clients may send).
_OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}


def build_chat(doc: JsonObject, model: str, stream: bool) -> JsonObject:
    """The Ollama `/api/chat` body for an OpenAI chat request."""
    n_of(doc, KIND)
    reject_set(doc, KIND, _UNSUPPORTED)
    names: dict[str, str] = {}  # tool call id → function name, for tool results
    messages: list[JsonObject] = []
    for i, message in enumerate(messages_of(doc)):
        role, param = message["role"], f"messages[{i}]"
        if role in ("system", "developer"):
            messages.append(
                {"role": "system", "content": text_of(message.get("content"), f"{param}.content")}
            )
        elif role == "user":
            messages.append(_user_message(message, param))
        elif role == "assistant":
            out: JsonObject = {
                "role": "assistant",
                "content": text_of(message.get("content"), f"{param}.content"),
            }
            calls = []
            for j, call in enumerate(message.get("tool_calls") or []):
                call_id, name, arguments = arguments_of(call, f"{param}.tool_calls[{j}]")
                names[call_id] = name
                calls.append({"function": {"name": name, "arguments": arguments}})
            if calls:
                out["tool_calls"] = calls
            messages.append(out)
        elif role == "tool":
            result: JsonObject = {
                "role": "tool",
                "content": text_of(message.get("content"), f"{param}.content"),
            }
            tool_name = names.get(str(message.get("tool_call_id")))
            if tool_name:
                result["tool_name"] = tool_name
            messages.append(result)
        else:
            raise InvalidRequest(f"{param}.role '{role}' is not supported.", param=f"{param}.role")
    body: JsonObject = {"model": model, "messages": messages, "stream": stream}
    options = {name: doc[field] for field, name in _OPTIONS.items() if doc.get(field) is not None}
    if (max_tokens := max_tokens_of(doc)) is not None:
        options["num_predict"] = max_tokens
    if (stop := stop_sequences_of(doc)) is not None:
        options["stop"] = stop
    if options:
        body["options"] = options
    functions = functions_of(doc)
    choice = tool_choice_of(doc)
    if choice is not None and choice[0] in ("required", "function"):
        raise untranslatable("tool_choice", KIND, "Ollama cannot force a tool call; use auto or none")
    if functions and (choice is None or choice[0] != "none"):
        body["tools"] = [{"type": "function", "function": f} for f in functions]
    kind, schema, _ = response_format_of(doc)
    if kind == "json_object":
        body["format"] = "json"
    elif kind == "json_schema":
        body["format"] = schema
    return body


def _user_message(message: JsonObject, param: str) -> JsonObject:
    texts: list[str] = []
    images: list[str] = []
    for j, part in enumerate(content_parts(message.get("content"), f"{param}.content")):
        part_param = f"{param}.content[{j}]"
        if part["type"] == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif part["type"] == "image_url":
            source = image_url_of(part, part_param)
            if isinstance(source, str):
                raise untranslatable(
                    f"{part_param}.image_url", KIND, "Ollama takes images as base64 data URLs"
                )
            images.append(source[1])
        else:
            raise untranslatable(f"{part_param}.type", KIND, f"content part type '{part['type']}'")
    out: JsonObject = {"role": "user", "content": "\n".join(texts)}
    if images:
        out["images"] = images
    return out


def _usage(doc: JsonObject) -> JsonObject:
    prompt, completion = doc.get("prompt_eval_count"), doc.get("eval_count")
    return usage_object(
        prompt if isinstance(prompt, int) else 0, completion if isinstance(completion, int) else 0
    )


def _finish_reason(doc: JsonObject, had_tool_calls: bool) -> str:
    if had_tool_calls:
        return "tool_calls"
    return "length" if doc.get("done_reason") == "length" else "stop"


def _tool_calls(message: JsonObject, call_prefix: str, start: int) -> list[tuple[str, str, str]]:
    """`(id, name, arguments JSON)` for each whole tool call of an Ollama message."""
    calls = []
    for i, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise UpstreamProtocolError("The upstream sent a malformed tool call.")
        call_id = call.get("id") if isinstance(call.get("id"), str) else f"{call_prefix}_{start + i}"
        arguments = function.get("arguments")
        text = arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()
        calls.append((call_id, function["name"], text))
    return calls


class OllamaStreamDecoder:
    """Ollama NDJSON lines → OpenAI chunks, one line at a time."""

    def __init__(self, writer: ChunkWriter, call_prefix: str):
        self.writer = writer
        self.call_prefix = call_prefix
        self.buffer = b""
        self.calls = 0
        self.done = False

    def feed(self, chunk: bytes) -> bytes:
        lines = (self.buffer + chunk).split(b"\n")
        self.buffer = lines.pop()
        return b"".join(self._line(line) for line in lines if line.strip())

    def _line(self, line: bytes) -> bytes:
        doc = decode_json(line, "a stream line")
        if "error" in doc:
            raise stream_error(doc["error"])
        writer = self.writer
        out = [] if writer.role_sent else [writer.role()]
        message = doc.get("message")
        if isinstance(message, dict):
            if isinstance(message.get("thinking"), str) and message["thinking"]:
                out.append(writer.reasoning(message["thinking"]))
            if isinstance(message.get("content"), str) and message["content"]:
                out.append(writer.text(message["content"]))
            for call_id, name, arguments in _tool_calls(message, self.call_prefix, self.calls):
                out.append(writer.tool_call_start(self.calls, call_id, name))
                out.append(writer.tool_call_arguments(self.calls, arguments))
                self.calls += 1
        if doc.get("done") is True:
            self.done = True
            out.append(writer.finish(_finish_reason(doc, self.calls > 0)))
            out.append(writer.usage(_usage(doc)))
        return b"".join(out)

    def finish(self) -> bytes:
        out = self._line(self.buffer) if self.buffer.strip() else b""
        self.buffer = b""
        if not self.done:
            raise UpstreamProtocolError("The upstream stream ended before its final (done) line.")
        return out + DONE


class OllamaProvider(ChatJsonProvider):
    """Ollama's `/api/chat`."""

    kind = KIND
    path = "/api/chat"

    def chat_body(self, doc: JsonObject, model: str, stream: bool) -> JsonObject:
        return build_chat(doc, model, stream)

    def stream_decoder(self, ctx: RequestContext) -> StreamDecoder | None:
        return OllamaStreamDecoder(
            ChunkWriter(f"chatcmpl-{ctx.request_id}", ctx.client_model), f"call_{ctx.request_id}"
        )

    def decode_body(self, ctx: RequestContext, body: bytes) -> bytes:
        doc = decode_json(body, "a response")
        message = doc.get("message")
        if not isinstance(message, dict):
            raise UpstreamProtocolError("The upstream response has no message.")
        calls = _tool_calls(message, f"call_{ctx.request_id}", 0)
        content = message.get("content") if isinstance(message.get("content"), str) else ""
        thinking = message.get("thinking") if isinstance(message.get("thinking"), str) else None
        return chat_completion_body(
            f"chatcmpl-{ctx.request_id}",
            ctx.client_model,
            content or (None if calls else ""),
            _finish_reason(doc, bool(calls)),
            _usage(doc),
            [tool_call(*c) for c in calls],
            thinking,
        )
