"""OpenAI chat chunks → Gemini `streamGenerateContent` chunks, as they arrive (the client encoder).

Text and thought deltas go out at once, one GenerateContentResponse chunk per OpenAI event. Gemini
sends a function call whole (`args` is an object, not a string that grows), so tool-call fragments are
kept per candidate and sent as `functionCall` parts in the last chunk, with the finish reason and
`usageMetadata` (OpenAI streams report usage last). Two stream forms: `alt=sse` (`data: {...}` events,
what every SDK asks for) and the default, one JSON array written element by element.

A stream that ends before its finish reason, an event that is not JSON, or an upstream error event
ends the client's stream with an error chunk (`{"error": {"code", "message", "status"}}`), as the
Gemini API does.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from gatecore.api.error_bodies import render_gemini_error
from gatecore.api.openai_chat_response import ChatCompletionChunk
from gatecore.errors import GatewayError, UpstreamProtocolError
from gatecore.request import Usage
from gatecore.translate.hub_error_to_gateway_error import upstream_error
from gatecore.translate.hub_response_to_gemini import (
    finish_reason,
    function_call_part,
    response_from_completion,
    usage_metadata,
)

_chunk = msgspec.json.Decoder(ChatCompletionChunk)
# A text delta of the first candidate, and the members every chunk ends with (GeminiEncoder.tail).
_TEXT = b'{"candidates":[{"content":{"parts":[{"text":%s}],"role":"model"},"index":0}'


class _Call:
    __slots__ = ("arguments", "id", "name")

    def __init__(self, call_id: str | None, name: str | None):
        self.id = call_id
        self.name = name
        self.arguments: list[str] = []


class GeminiEncoder:
    """Answers one Gemini generateContent / streamGenerateContent request."""

    __slots__ = (
        "calls",
        "content_type",
        "ended",
        "finished",
        "model",
        "request_id",
        "response_id",
        "sent",
        "sse",
        "stream",
        "tail",
        "thoughts",
        "unsent",
    )

    def __init__(self, model: str, request_id: str, thoughts: bool, stream: bool, sse: bool):
        self.model = model
        self.request_id = request_id
        self.thoughts = thoughts  # the client asked for thought parts
        self.stream = stream
        self.sse = sse  # `alt=sse`, else one JSON array
        self.content_type = "text/event-stream" if stream and sse else "application/json"
        self.response_id = request_id
        self.tail = b'],"modelVersion":%s,"responseId":%s}' % (orjson.dumps(model), orjson.dumps(request_id))
        self.sent = False  # a chunk went out (the array is open)
        self.ended = False
        self.finished: dict[int, str] = {}  # candidate index → OpenAI finish reason
        self.calls: dict[int, dict[int, _Call]] = {}  # candidate → OpenAI call index → the call
        self.unsent = b""

    # -- streams -------------------------------------------------------------------------------------

    def feed(self, events: bytes) -> bytes:
        if self.ended or not events:
            return b""
        if b"\r" in events:
            events = events.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        out: list[bytes] = []
        try:
            for event in events.split(b"\n\n"):
                if event[:1] == b"\n":  # the LF of a CRLF blank line split across two reads
                    event = event.lstrip(b"\n")
                if not event:
                    continue
                payload = _data_of(event)
                if payload is None or payload == b"[DONE]":
                    continue
                try:
                    chunk = _chunk.decode(payload)
                except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                    raise UpstreamProtocolError(
                        "The upstream sent a stream event that is not valid JSON."
                    ) from None
                self._translate(chunk, out)
        except GatewayError:
            self.unsent = b"".join(out)
            raise
        return b"".join(out)

    def _translate(self, chunk: ChatCompletionChunk, out: list[bytes]) -> None:
        if chunk.id and chunk.id != self.response_id:
            self.response_id = chunk.id
            self.tail = b'],"modelVersion":%s,"responseId":%s}' % (
                orjson.dumps(self.model),
                orjson.dumps(chunk.id),
            )
        if chunk.error is not None:
            raise upstream_error(0, chunk.error)
        choices = chunk.choices
        if len(choices) == 1:  # the common event: one text delta of the first candidate
            choice = choices[0]
            delta = choice.delta
            if (
                choice.index == 0
                and choice.finish_reason is None
                and delta is not None
                and delta.content
                and not delta.tool_calls
                and not (self.thoughts and (delta.reasoning_content or delta.reasoning))
            ):
                out.append(self._frame(_TEXT % orjson.dumps(delta.content) + self.tail))
                return
        candidates = []
        for choice in chunk.choices:
            index = choice.index
            delta = choice.delta
            if delta is not None:
                parts: list[dict[str, Any]] = []
                reasoning = delta.reasoning_content or delta.reasoning
                if self.thoughts and reasoning:
                    parts.append({"text": reasoning, "thought": True})
                text = delta.content or delta.refusal
                if text:
                    parts.append({"text": text})
                if parts:
                    candidates.append({"content": {"parts": parts, "role": "model"}, "index": index})
                for call in delta.tool_calls or ():
                    calls = self.calls.setdefault(index, {})
                    function = call.function
                    found = calls.get(call.index)
                    if found is None:
                        found = calls[call.index] = _Call(call.id, function.name if function else None)
                    if function is not None and function.arguments:
                        found.arguments.append(function.arguments)
            if choice.finish_reason is not None:
                reason = choice.finish_reason
                self.finished[index] = "content_filter" if delta is not None and delta.refusal else reason
        if candidates:
            out.append(self._chunk({"candidates": candidates}))

    def finish(self, usage: Usage) -> bytes:
        if self.ended:
            return b""
        if 0 not in self.finished:
            raise UpstreamProtocolError("The upstream stream ended before the model finished its answer.")
        self.ended = True
        candidates = []
        for index in sorted(self.finished.keys() | self.calls.keys()):
            candidate: dict[str, Any] = {}
            calls = self.calls.get(index)
            if calls:
                parts = [function_call_part(c.id, c.name, "".join(c.arguments)) for c in calls.values()]
                candidate["content"] = {"parts": parts, "role": "model"}
            candidate["finishReason"] = finish_reason(self.finished.get(index))
            candidate["index"] = index
            candidates.append(candidate)
        last = self._chunk({"candidates": candidates, "usageMetadata": usage_metadata(usage)})
        return last if self.sse else last + b"]"

    def _chunk(self, response: dict[str, Any]) -> bytes:
        response["modelVersion"] = self.model
        response["responseId"] = self.response_id
        return self._frame(orjson.dumps(response))

    def _frame(self, data: bytes) -> bytes:
        if self.sse:
            return b"data: " + data + b"\r\n\r\n"
        opening = b",\r\n" if self.sent else b"["
        self.sent = True
        return opening + data

    # -- whole bodies and errors ---------------------------------------------------------------------

    def encode_body(self, body: bytes) -> bytes:
        response = response_from_completion(body, self.model, self.request_id, self.thoughts)
        if not self.stream:
            return orjson.dumps(response)
        self.ended = True
        framed = self._frame(orjson.dumps(response))
        return framed if self.sse else framed + b"]"

    def error_answer(self, exc: GatewayError) -> tuple[int, bytes]:
        return exc.status, render_gemini_error(exc)

    def error_event(self, exc: GatewayError) -> bytes:
        self.ended = True
        unsent, self.unsent = self.unsent, b""
        framed = self._frame(render_gemini_error(exc))
        return unsent + (framed if self.sse else framed + b"]")


def _data_of(event: bytes) -> bytes | None:
    """The data of an SSE event (its `data:` lines joined), or None for a comment."""
    if event[:5] == b"data:" and b"\n" not in event:
        return event[6:] if event[5:6] == b" " else event[5:]
    data = [line[5:].removeprefix(b" ") for line in event.split(b"\n") if line[:5] == b"data:"]
    return b"\n".join(data) if data else None
