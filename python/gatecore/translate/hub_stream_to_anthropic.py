"""OpenAI chat chunks → Anthropic Messages stream events, as they arrive (the client encoder).

Each OpenAI event the relay completes is translated at once; nothing is held back except the state
below. Blocks open and close in Anthropic's order: a thinking block (when the client asked for
thinking), text, and one tool_use block per tool call in the order the calls start; a block is
stopped when the next one starts or at the finish reason. `message_delta` (stop reason and usage)
and `message_stop` follow when the upstream ends, because usage comes last in OpenAI streams.

A stream that ends before its finish reason, an event that is not JSON, or tool-call fragments that
go back to an already-stopped call raise UpstreamProtocolError: the relay then ends the client's
stream with an Anthropic `error` event. An upstream error event becomes that error event directly.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from gatecore.api.error_bodies import anthropic_stream_error_event, render_anthropic_error
from gatecore.api.openai_chat_response import ChatCompletionChunk, ToolCall
from gatecore.errors import GatewayError, UpstreamProtocolError
from gatecore.request import Usage
from gatecore.translate.hub_error_to_gateway_error import overloaded_as_529, upstream_error
from gatecore.translate.hub_response_to_anthropic import (
    message_events,
    message_from_completion,
    message_id,
    stop_reason,
    usage_object,
)

_chunk = msgspec.json.Decoder(ChatCompletionChunk)

_BLOCK_START = b'event: content_block_start\ndata: {"type":"content_block_start","index":%d,"content_block":'
_TEXT_START = _BLOCK_START + b'{"type":"text","text":""}}\n\n'
_THINKING_START = _BLOCK_START + b'{"type":"thinking","thinking":"","signature":""}}\n\n'
_TOOL_START = _BLOCK_START + b'{"type":"tool_use","id":%s,"name":%s,"input":{}}}\n\n'
_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":'
_TEXT_DELTA = _DELTA + b'{"type":"text_delta","text":%s}}\n\n'
_THINKING_DELTA = _DELTA + b'{"type":"thinking_delta","thinking":%s}}\n\n'
_SIGNATURE_DELTA = _DELTA + b'{"type":"signature_delta","signature":%s}}\n\n'
_JSON_DELTA = _DELTA + b'{"type":"input_json_delta","partial_json":%s}}\n\n'
_BLOCK_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n'
_PING = b'event: ping\ndata: {"type":"ping"}\n\n'
_MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'

# The kind of the open block.
_NONE, _TEXT, _THINKING, _TOOL = 0, 1, 2, 3


class AnthropicEncoder:
    """Answers one Anthropic Messages request: its stream event by event, or its whole body."""

    __slots__ = (
        "content_type",
        "ended",
        "finish_reason",
        "index",
        "matched",
        "model",
        "open_kind",
        "open_tool",
        "refused",
        "request_id",
        "started",
        "stop_sequences",
        "stream",
        "thinking",
        "tool_calls",
        "unsent",
    )

    def __init__(
        self, model: str, request_id: str, stop_sequences: tuple[str, ...], thinking: bool, stream: bool
    ):
        self.model = model
        self.request_id = request_id
        self.stop_sequences = stop_sequences
        self.thinking = thinking  # the client asked for thinking blocks
        self.stream = stream
        self.content_type = "text/event-stream" if stream else "application/json"
        self.started = False  # message_start sent
        self.ended = False  # message_stop or an error event sent: nothing more goes out
        self.index = -1  # index of the last block opened
        self.open_kind = _NONE
        self.open_tool = -1  # OpenAI index of the tool call whose block is open
        self.tool_calls: set[int] = set()  # OpenAI indexes of every call started
        self.finish_reason: str | None = None
        self.matched: str | int | None = None  # the stop string the upstream says it matched
        self.refused = False
        self.unsent = b""  # translated events of a batch that broke, not yet returned

    # -- streams -------------------------------------------------------------------------------------

    def feed(self, events: bytes) -> bytes:
        if self.ended or not events:
            return b""
        if b"\r" in events:
            events = events.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        out: list[bytes] = []
        try:
            self._feed(events, out)
        except GatewayError:
            self.unsent = b"".join(out)  # the events before the broken one go out with the error event
            raise
        return b"".join(out)

    def _feed(self, events: bytes, out: list[bytes]) -> None:
        for event in events.split(b"\n\n"):
            if event[:1] == b"\n":  # the LF of a CRLF blank line split across two reads
                event = event.lstrip(b"\n")
            if not event:
                continue
            payload: bytes | None
            if event[:5] == b"data:" and b"\n" not in event:
                payload = event[6:] if event[5:6] == b" " else event[5:]
            else:
                payload = _data_of(event)
                if payload is None:  # a comment (keep-alive) or a field-only event
                    out.append(_PING)
                    continue
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

    def finish(self, usage: Usage) -> bytes:
        if self.ended:
            return b""
        self.ended = True
        if not self.started:
            raise UpstreamProtocolError("The upstream stream ended before its first event.")
        if self.finish_reason is None:
            raise UpstreamProtocolError("The upstream stream ended before the model finished its answer.")
        reason, sequence = stop_reason(self.finish_reason, self.matched, self.stop_sequences)
        if self.refused and reason == "end_turn":
            reason = "refusal"
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": usage_object(usage),
        }
        return b"event: message_delta\ndata: " + orjson.dumps(delta) + b"\n\n" + _MESSAGE_STOP

    def _translate(self, chunk: ChatCompletionChunk, out: list[bytes]) -> None:
        if not self.started:
            self.started = True
            out.append(self._message_start(chunk.id))
        if chunk.error is not None:
            self.ended = True
            out.append(anthropic_stream_error_event(upstream_error(0, chunk.error)))
            return
        for choice in chunk.choices:
            if choice.index != 0:  # Anthropic has one answer; `n` is never asked for
                continue
            delta = choice.delta
            if delta is not None:
                if self.thinking:
                    reasoning = delta.reasoning_content or delta.reasoning
                    if reasoning:
                        if self.open_kind != _THINKING:
                            self._open(_THINKING, _THINKING_START, out)
                        out.append(_THINKING_DELTA % (self.index, orjson.dumps(reasoning)))
                    if delta.reasoning_signature:  # an Anthropic upstream's: it ends its block
                        if self.open_kind != _THINKING:
                            self._open(_THINKING, _THINKING_START, out)
                        out.append(_SIGNATURE_DELTA % (self.index, orjson.dumps(delta.reasoning_signature)))
                        self._close(out)
                text = delta.content
                if not text and delta.refusal:
                    text = delta.refusal
                    self.refused = True
                if text:
                    if self.open_kind != _TEXT:
                        self._open(_TEXT, _TEXT_START, out)
                    out.append(_TEXT_DELTA % (self.index, orjson.dumps(text)))
                if delta.tool_calls:
                    for call in delta.tool_calls:
                        self._tool_call(call, out)
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason
                self.matched = choice.stop_reason
                self._close(out)

    def _tool_call(self, call: ToolCall, out: list[bytes]) -> None:
        function = call.function
        if call.index not in self.tool_calls:  # the first delta of a call: id and name
            self.tool_calls.add(call.index)
            self._close(out)
            self.index += 1
            self.open_kind = _TOOL
            self.open_tool = call.index
            call_id = call.id or f"toolu_{self.request_id}_{call.index}"
            name = (function.name if function is not None else None) or ""
            out.append(_TOOL_START % (self.index, orjson.dumps(call_id), orjson.dumps(name)))
        elif call.index != self.open_tool or self.open_kind != _TOOL:
            raise UpstreamProtocolError(
                "The upstream sent arguments for a tool call after the next one had started."
            )
        if function is not None and function.arguments:
            out.append(_JSON_DELTA % (self.index, orjson.dumps(function.arguments)))

    def _open(self, kind: int, start: bytes, out: list[bytes]) -> None:
        self._close(out)
        self.index += 1
        self.open_kind = kind
        out.append(start % self.index)

    def _close(self, out: list[bytes]) -> None:
        if self.open_kind != _NONE:
            out.append(_BLOCK_STOP % self.index)
            self.open_kind = _NONE

    def _message_start(self, upstream_id: str) -> bytes:
        message: dict[str, Any] = {
            "id": message_id(upstream_id, self.request_id),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # OpenAI-format streams report usage only at their end (message_delta carries it).
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return (
            b"event: message_start\ndata: "
            + orjson.dumps({"type": "message_start", "message": message})
            + b"\n\n"
        )

    # -- whole bodies and errors ---------------------------------------------------------------------

    def encode_body(self, body: bytes) -> bytes:
        message = message_from_completion(
            body, self.model, self.request_id, self.stop_sequences, self.thinking
        )
        return message_events(message) if self.stream else orjson.dumps(message)

    def error_answer(self, exc: GatewayError) -> tuple[int, bytes]:
        exc = overloaded_as_529(exc)
        return exc.status, render_anthropic_error(exc)

    def error_event(self, exc: GatewayError) -> bytes:
        self.ended = True
        unsent, self.unsent = self.unsent, b""
        return unsent + anthropic_stream_error_event(exc)


def _data_of(event: bytes) -> bytes | None:
    """The data of an event with several lines (fields joined by newlines, as SSE says), or None."""
    data = [line[5:].removeprefix(b" ") for line in event.split(b"\n") if line[:5] == b"data:"]
    return b"\n".join(data) if data else None
