"""OpenAI chat chunks → Responses stream events, as they arrive (the client encoder of `/v1/responses`).

The reference's sequence: `response.created`, `response.in_progress`, then per output item
`response.output_item.added`, (`response.content_part.added`, `response.output_text.delta`…,
`response.output_text.done`, `response.content_part.done`) for text or
(`response.function_call_arguments.delta`…, `.done`) for a tool call, `response.output_item.done`;
and at the upstream's end `response.completed` (or `response.incomplete`) with the whole response and
its usage. Every event carries its `sequence_number`, from 0. The text item is closed when a tool call
starts; tool calls are closed at the finish reason (chat streams may interleave them, Responses
events name their `output_index`).

A stream that ends before its finish reason, an event that is not JSON, or an upstream error event
ends the client's stream with `response.failed` (its `error` says why).
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from gatecore.api.error_bodies import render_error
from gatecore.api.openai_chat_response import ChatCompletionChunk, ToolCall
from gatecore.errors import GatewayError, UpstreamProtocolError
from gatecore.request import Usage
from gatecore.translate.hub_error_to_gateway_error import upstream_error
from gatecore.translate.hub_response_to_responses import (
    ResponseShape,
    call_item,
    event,
    message_item,
    response_from_completion,
    text_part,
)
from gatecore.translate.responses_native_stream import NativeStream, looks_native

_chunk = msgspec.json.Decoder(ChatCompletionChunk)


class _ObjectHead(msgspec.Struct):
    object: str = ""


_object_head = msgspec.json.Decoder(_ObjectHead)


def _object_of(body: bytes) -> str:
    try:
        return _object_head.decode(body).object
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return ""


_TEXT_DELTA = (
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":%d,'
    b'"item_id":"%s","output_index":%d,"content_index":0,"delta":%s,"logprobs":[]}\n\n'
)
_ARGS_DELTA = (
    b"event: response.function_call_arguments.delta\ndata: "
    b'{"type":"response.function_call_arguments.delta","sequence_number":%d,"item_id":"%s",'
    b'"output_index":%d,"delta":%s}\n\n'
)


class _Call:
    __slots__ = ("arguments", "call_id", "item_id", "name", "output_index")

    def __init__(self, output_index: int, item_id: str, call_id: str, name: str):
        self.output_index = output_index
        self.item_id = item_id
        self.call_id = call_id
        self.name = name
        self.arguments: list[str] = []


class ResponsesEncoder:
    """Answers one Responses request: its stream event by event, or its whole body. Keeps the finished
    `response` object (`final`) for the stored-responses store."""

    __slots__ = (
        "calls",
        "content_type",
        "ended",
        "final",
        "finish_reason",
        "native",
        "output",
        "refusal",
        "seq",
        "shape",
        "started",
        "state",
        "stream",
        "text",
        "text_id",
        "text_index",
        "unsent",
    )

    def __init__(self, shape: ResponseShape, stream: bool):
        self.shape = shape
        self.stream = stream
        self.content_type = "text/event-stream" if stream else "application/json"
        self.seq = 0
        self.started = False
        self.ended = False
        self.output: list[dict[str, Any]] = []  # finished items, by output index
        self.text: list[str] | None = None  # the open message item's text
        self.text_id = ""
        self.text_index = -1
        self.refusal = False
        self.calls: dict[int, _Call] = {}  # open tool calls by chat index
        self.finish_reason: str | None = None
        self.final: dict[str, Any] | None = None  # the finished response object
        self.unsent = b""
        # Set at the first events or body when the upstream answered in Responses itself.
        self.native: NativeStream | None = None
        self.state: Any = None  # the decode stage's record of the request (pipeline/decode_responses.py)

    # -- streams -------------------------------------------------------------------------------------

    def feed(self, events: bytes) -> bytes:
        if self.ended or not events:
            return b""
        native = self.native
        if native is None and not self.started and looks_native(events):
            native = self.native = NativeStream(self.shape.model, self.shape.previous)
        if native is not None:
            return native.feed(events)
        if b"\r" in events:
            events = events.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        out: list[bytes] = []
        try:
            for raw in events.split(b"\n\n"):
                raw = raw.lstrip(b"\n")
                if not raw:
                    continue
                if raw[:5] == b"data:" and b"\n" not in raw:
                    payload = raw[6:] if raw[5:6] == b" " else raw[5:]
                else:
                    data = [line[5:].removeprefix(b" ") for line in raw.split(b"\n") if line[:5] == b"data:"]
                    if not data:
                        continue  # a comment (keep-alive)
                    payload = b"\n".join(data)
                if payload == b"[DONE]":
                    continue
                try:
                    chunk = _chunk.decode(payload)
                except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                    raise UpstreamProtocolError(
                        "The upstream sent a stream event that is not valid JSON."
                    ) from None
                self._translate(chunk, out)
                if self.ended:
                    break
        except GatewayError:
            self.unsent = b"".join(out)
            raise
        return b"".join(out)

    def finish(self, usage: Usage) -> bytes:
        if self.ended:
            return b""
        if self.native is not None:
            self.ended = True
            self.native.finish(usage)
            self.final = self.native.final
            return b""
        if not self.started:
            raise UpstreamProtocolError("The upstream stream ended before its first event.")
        if self.finish_reason is None:
            raise UpstreamProtocolError("The upstream stream ended before the model finished its answer.")
        self.ended = True
        out: list[bytes] = []
        self._close_text(out)
        self._close_calls(out)
        response = self.final = self.shape.response("completed", self.output, usage, self.finish_reason)
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        out.append(self._event(kind, {"response": response}))
        return b"".join(out)

    def _event(self, kind: str, fields: dict[str, Any]) -> bytes:
        seq = self.seq
        self.seq = seq + 1
        return event(kind, seq, fields)

    def _start(self, out: list[bytes]) -> None:
        self.started = True
        response = self.shape.response("in_progress", [])
        out.append(self._event("response.created", {"response": response}))
        out.append(self._event("response.in_progress", {"response": response}))

    def _translate(self, chunk: ChatCompletionChunk, out: list[bytes]) -> None:
        if not self.started:
            self._start(out)
        if chunk.error is not None:
            raise upstream_error(0, chunk.error)
        for choice in chunk.choices:
            if choice.index != 0:  # one answer: `n` is never asked for
                continue
            delta = choice.delta
            if delta is not None:
                text = delta.content
                if not text and delta.refusal:
                    text = delta.refusal
                    self.refusal = True
                if text:
                    self._text(text, out)
                if delta.tool_calls:
                    for call in delta.tool_calls:
                        self._tool_call(call, out)
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason

    def _text(self, text: str, out: list[bytes]) -> None:
        if self.text is None:
            self.text = []
            self.text_index = index = len(self.output) + len(self.calls)
            self.text_id = item_id = f"msg_{self.shape.request_id}_{index}"
            item = message_item(item_id, "", False, "in_progress")
            item["content"] = []
            out.append(self._event("response.output_item.added", {"output_index": index, "item": item}))
            part = {"item_id": item_id, "output_index": index, "content_index": 0, "part": text_part("")}
            out.append(self._event("response.content_part.added", part))
        self.text.append(text)
        seq = self.seq
        self.seq = seq + 1
        out.append(_TEXT_DELTA % (seq, self.text_id.encode(), self.text_index, orjson.dumps(text)))

    def _close_text(self, out: list[bytes]) -> None:
        if self.text is None:
            return
        text, self.text = "".join(self.text), None
        item_id, index = self.text_id, self.text_index
        item = message_item(item_id, text, self.refusal)
        if not self.refusal:
            where = {"item_id": item_id, "output_index": index, "content_index": 0}
            out.append(self._event("response.output_text.done", {**where, "text": text, "logprobs": []}))
            out.append(self._event("response.content_part.done", {**where, "part": text_part(text)}))
        out.append(self._event("response.output_item.done", {"output_index": index, "item": item}))
        self.output.append(item)

    def _tool_call(self, call: ToolCall, out: list[bytes]) -> None:
        function = call.function
        state = self.calls.get(call.index)
        if state is None:  # the first delta of a call: id and name
            self._close_text(out)
            index = len(self.output) + len(self.calls)
            rid = self.shape.request_id
            name = (function.name if function is not None else None) or ""
            state = _Call(index, f"fc_{rid}_{index}", call.id or f"call_{rid}_{index}", name)
            self.calls[call.index] = state
            item = call_item(state.item_id, state.call_id, name, "", "in_progress")
            out.append(self._event("response.output_item.added", {"output_index": index, "item": item}))
        if function is not None and function.arguments:
            state.arguments.append(function.arguments)
            seq = self.seq
            self.seq = seq + 1
            delta = orjson.dumps(function.arguments)
            out.append(_ARGS_DELTA % (seq, state.item_id.encode(), state.output_index, delta))

    def _close_calls(self, out: list[bytes]) -> None:
        for state in sorted(self.calls.values(), key=lambda c: c.output_index):
            arguments = "".join(state.arguments)
            where = {"item_id": state.item_id, "output_index": state.output_index}
            out.append(self._event("response.function_call_arguments.done",
                                   {**where, "name": state.name, "arguments": arguments}))  # fmt: skip
            item = call_item(state.item_id, state.call_id, state.name, arguments)
            out.append(
                self._event("response.output_item.done", {"output_index": state.output_index, "item": item})
            )
            self.output.append(item)
        self.calls = {}

    # -- whole bodies and errors ---------------------------------------------------------------------

    def encode_body(self, body: bytes) -> bytes:
        if _object_of(body) == "response":  # a Responses upstream's own answer: relayed as it is
            self.content_type = "application/json"
            previous = self.shape.previous
            if previous is None and self.state is not None and not self.state.store:
                return body  # nothing to keep, nothing to change: not even parsed
            self.final = doc = orjson.loads(body)
            if previous is None:
                return body
            doc["previous_response_id"] = previous  # gatecore replayed it in place of the id
            return orjson.dumps(doc)
        response, _ = response_from_completion(body, self.shape)
        self.final = response
        if not self.stream:
            return orjson.dumps(response)
        # A whole answer to a streamed request: the events a stream of it would have had.
        out: list[bytes] = []
        self._start(out)
        for item in response["output"]:
            if item["type"] == "message":
                part = item["content"][0]
                self.refusal = part["type"] == "refusal"
                self._text(part.get("text") or part.get("refusal") or "", out)
                self._close_text(out)
            else:
                self._whole_call(item, out)
        self.ended = True
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        out.append(self._event(kind, {"response": response}))
        return b"".join(out)

    def _whole_call(self, item: dict[str, Any], out: list[bytes]) -> None:
        index = len(self.output)
        added = {**item, "status": "in_progress", "arguments": ""}
        out.append(self._event("response.output_item.added", {"output_index": index, "item": added}))
        where = {"item_id": item["id"], "output_index": index}
        out.append(
            self._event("response.function_call_arguments.delta", {**where, "delta": item["arguments"]})
        )
        out.append(self._event("response.function_call_arguments.done",
                               {**where, "name": item["name"], "arguments": item["arguments"]}))  # fmt: skip
        out.append(self._event("response.output_item.done", {"output_index": index, "item": item}))
        self.output.append(item)

    def error_answer(self, exc: GatewayError) -> tuple[int, bytes]:
        return exc.status, render_error(exc)

    def error_event(self, exc: GatewayError) -> bytes:
        out = [self.unsent]
        self.unsent = b""
        if self.native is not None:
            self.ended = True
            return out[0] + self.native.error_event(exc)
        if not self.started:
            self._start(out)
        self.ended = True
        self._close_text(out)
        error = {"code": exc.code or "server_error", "message": exc.message}
        response = self.shape.response("failed", self.output, None, None, error)
        self.final = None  # a failed response is not kept
        out.append(self._event("response.failed", {"response": response}))
        return b"".join(out)
