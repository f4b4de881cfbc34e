"""Anthropic Messages stream → OpenAI chat.completion.chunk events, event by event.

Anthropic's events (API reference, "Streaming Messages"): message_start, content_block_start
(text / tool_use / thinking), content_block_delta (text_delta, input_json_delta, thinking_delta,
signature_delta), content_block_stop, message_delta (stop_reason, cumulative usage), message_stop,
ping, error. Tool-use blocks become OpenAI tool calls numbered 0, 1, … in the order they start.
"""

from __future__ import annotations

from typing import Any

import orjson

from gatecore.errors import UpstreamProtocolError, UpstreamStreamError
from gatecore.providers.sse_events import SseEventSplitter
from gatecore.providers.to_hub_chunks import DONE, ChunkWriter, usage_object

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
}

# Anthropic error type → (HTTP status, OpenAI error type, code). A mid-stream `error` event has no
# status of its own: Anthropic's status for its type is kept, so an Anthropic client hears the same.
ERROR_TYPES = {
    "invalid_request_error": (400, "invalid_request_error", "invalid_request"),
    "authentication_error": (401, "authentication_error", "invalid_api_key"),
    "permission_error": (403, "permission_error", "permission_denied"),
    "not_found_error": (404, "not_found_error", "not_found"),
    "request_too_large": (413, "invalid_request_error", "request_too_large"),
    "rate_limit_error": (429, "rate_limit_error", "rate_limit_exceeded"),
    "api_error": (500, "api_error", "upstream_error"),
    "overloaded_error": (529, "api_error", "overloaded"),
}


def anthropic_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Anthropic usage → OpenAI usage. Anthropic's input_tokens leaves out cache reads and writes;
    OpenAI's prompt_tokens counts them, with the reads repeated as cached_tokens."""
    cached = usage.get("cache_read_input_tokens") or 0
    prompt = (usage.get("input_tokens") or 0) + cached + (usage.get("cache_creation_input_tokens") or 0)
    return usage_object(prompt, usage.get("output_tokens") or 0, cached)


class AnthropicStreamDecoder:
    """One Anthropic stream → OpenAI SSE events (see the module docstring)."""

    __slots__ = (
        "_blocks",
        "_finish",
        "_json_tool",
        "_model",
        "_splitter",
        "_stopped",
        "_tools",
        "_usage",
        "_writer",
    )

    def __init__(self, model: str, json_tool: bool):
        self._model = model
        self._json_tool = json_tool  # the forced response_format tool: its input is the message text
        self._splitter = SseEventSplitter()
        self._writer: ChunkWriter | None = None
        self._blocks: dict[
            int, int
        ] = {}  # Anthropic content block index → OpenAI tool call index (-1: JSON text)
        self._tools = 0
        self._usage: dict[str, Any] = {}
        self._finish: str | None = None
        self._stopped = False

    def feed(self, chunk: bytes) -> bytes:
        out = []
        for name, data in self._splitter.feed(chunk):
            if self._stopped:
                continue  # nothing counts after message_stop
            try:
                event = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise UpstreamProtocolError(
                    f"The upstream sent an event that is not valid JSON ({name.decode('latin-1')[:40]})."
                ) from None
            if not isinstance(event, dict):
                raise UpstreamProtocolError("The upstream sent an event that is not a JSON object.")
            piece = self._event(event.get("type") or name.decode("latin-1"), event)
            if piece:
                out.append(piece)
        return b"".join(out)

    def finish(self) -> bytes:
        if self._splitter.pending:
            raise UpstreamProtocolError("The upstream stream ended in the middle of an event.")
        if not self._stopped:
            raise UpstreamProtocolError("The upstream stream ended before message_stop.")
        return DONE

    def _event(self, kind: str, event: dict[str, Any]) -> bytes:
        writer = self._writer
        if kind == "content_block_delta" and writer is not None:
            delta = event.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                return writer.text(delta.get("text") or "")
            if dtype == "input_json_delta":
                fragment = delta.get("partial_json") or ""
                tool = self._blocks.get(event.get("index", -2))
                if not fragment or tool is None:
                    return b""
                return writer.text(fragment) if tool < 0 else writer.tool_call_arguments(tool, fragment)
            if dtype == "thinking_delta":
                return writer.reasoning(delta.get("thinking") or "")
            if dtype == "signature_delta" and isinstance(delta.get("signature"), str):
                return writer.reasoning_signature(delta["signature"])
            return b""  # citations_delta: nothing in OpenAI's format
        if kind == "content_block_start" and writer is not None:
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                if self._json_tool:
                    self._blocks[event.get("index", 0)] = -1
                    return b""
                tool = self._blocks[event.get("index", 0)] = self._tools
                self._tools += 1
                return writer.tool_call_start(tool, str(block.get("id") or ""), str(block.get("name") or ""))
            if block.get("type") == "text" and block.get("text"):
                return writer.text(block["text"])
            return b""
        if kind == "message_start":
            message = event.get("message") or {}
            self._usage.update(message.get("usage") or {})
            self._writer = ChunkWriter(str(message.get("id") or "msg"), self._model)
            return self._writer.role()
        if kind == "message_delta":
            delta = event.get("delta") or {}
            self._usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            reason = delta.get("stop_reason")
            if reason is not None and writer is not None:
                finish = FINISH_REASONS.get(reason, "stop")
                if self._json_tool and finish == "tool_calls":
                    finish = "stop"
                self._finish = finish
                return writer.finish(finish)
            return b""
        if kind == "message_stop":
            self._stopped = True
            if writer is None:
                raise UpstreamProtocolError("The upstream stream had no message_start.")
            tail = b"" if self._finish is not None else writer.finish("stop")
            return tail + writer.usage(anthropic_usage(self._usage))
        if kind == "error":
            error = event.get("error") or {}
            message = error.get("message") if isinstance(error.get("message"), str) else "stream error"
            etype = error.get("type")
            if not isinstance(etype, str):
                etype = "api_error"
            failure = UpstreamStreamError(f"The upstream reported an error mid-stream ({etype}): {message}")
            failure.status = ERROR_TYPES.get(etype, ERROR_TYPES["api_error"])[0]
            raise failure
        if writer is None and kind in ("content_block_start", "content_block_delta"):
            raise UpstreamProtocolError("The upstream stream had no message_start.")
        return b""  # ping, content_block_stop, and event types added later
