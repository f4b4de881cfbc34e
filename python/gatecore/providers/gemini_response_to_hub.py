"""Gemini answers → OpenAI: whole GenerateContentResponse bodies and `alt=sse` streams.

A Gemini stream is a series of `data: <GenerateContentResponse>` events, each holding the next parts
of the (one) candidate; the last carries `finishReason`, `usageMetadata` is cumulative. Function calls
arrive whole, so each becomes one OpenAI tool-call start delta plus one arguments delta. Gemini gives
calls no ids: they are numbered `call_<n>` per answer.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gatecore.errors import UpstreamProtocolError, UpstreamStreamError
from gatecore.providers.sse_events import SseEventSplitter
from gatecore.providers.to_hub_chunks import DONE, ChunkWriter, usage_object

_FILTERED = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY")


def finish_reason(reason: str | None, called_tools: bool) -> str:
    """Gemini finishReason → OpenAI finish_reason."""
    if reason in _FILTERED:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    return "tool_calls" if called_tools else "stop"


def gemini_usage(meta: dict[str, Any]) -> dict[str, Any]:
    """usageMetadata → OpenAI usage: thoughts count as completion (reasoning) tokens, as OpenAI's do."""
    thoughts = meta.get("thoughtsTokenCount") or 0
    return usage_object(
        meta.get("promptTokenCount") or 0,
        (meta.get("candidatesTokenCount") or 0) + thoughts,
        meta.get("cachedContentTokenCount") or 0,
        thoughts,
    )


def _candidate(response: dict[str, Any]) -> dict[str, Any] | None:
    candidates = response.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return candidates[0]
    return None


def _parts(candidate: dict[str, Any] | None) -> list[dict[str, Any]]:
    content = candidate.get("content") if candidate else None
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _blocked(response: dict[str, Any]) -> bool:
    feedback = response.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def openai_completion(response: dict[str, Any], model: str) -> dict[str, Any]:
    """A whole GenerateContentResponse as an OpenAI chat.completion."""
    candidate = _candidate(response)
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in _parts(candidate):
        if isinstance(part.get("text"), str):
            (reasoning if part.get("thought") else texts).append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            arguments = orjson.dumps(call.get("args") or {}).decode()
            function = {"name": call.get("name"), "arguments": arguments}
            calls.append({"id": f"call_{len(calls)}", "type": "function", "function": function})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    reason = candidate.get("finishReason") if candidate else ("SAFETY" if _blocked(response) else None)
    return {
        "id": response.get("responseId") or "gemini",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(reason, bool(calls)),
            }
        ],
        "usage": gemini_usage(response.get("usageMetadata") or {}),
    }


class GeminiStreamDecoder:
    """One `streamGenerateContent?alt=sse` stream → OpenAI SSE events."""

    __slots__ = ("_finished", "_model", "_splitter", "_tools", "_usage", "_writer")

    def __init__(self, model: str):
        self._model = model
        self._splitter = SseEventSplitter()
        self._writer: ChunkWriter | None = None
        self._tools = 0
        self._usage: dict[str, Any] = {}
        self._finished = False

    def feed(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        for _, data in self._splitter.feed(chunk):
            try:
                response = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise UpstreamProtocolError("The upstream sent an event that is not valid JSON.") from None
            if not isinstance(response, dict):
                raise UpstreamProtocolError("The upstream sent an event that is not a JSON object.")
            self._response(response, out)
        return b"".join(out)

    def finish(self) -> bytes:
        if self._splitter.pending:
            raise UpstreamProtocolError("The upstream stream ended in the middle of an event.")
        if not self._finished or self._writer is None:
            raise UpstreamProtocolError("The upstream stream ended before a finishReason.")
        return self._writer.usage(gemini_usage(self._usage)) + DONE

    def _response(self, response: dict[str, Any], out: list[bytes]) -> None:
        error = response.get("error")
        if isinstance(error, dict):
            failure = UpstreamStreamError(
                f"The upstream reported an error mid-stream ({error.get('status', 'error')}): "
                f"{error.get('message', '')}"
            )
            code = error.get("code")
            if isinstance(code, int) and 400 <= code <= 599:  # Google's HTTP status for the error
                failure.status = code
            raise failure
        writer = self._writer
        if writer is None:
            writer = self._writer = ChunkWriter(str(response.get("responseId") or "gemini"), self._model)
            out.append(writer.role())
        if isinstance(response.get("usageMetadata"), dict):
            self._usage = response["usageMetadata"]
        candidate = _candidate(response)
        for part in _parts(candidate):
            if isinstance(part.get("text"), str):
                if part["text"]:
                    out.append(
                        writer.reasoning(part["text"]) if part.get("thought") else writer.text(part["text"])
                    )
            elif isinstance(part.get("functionCall"), dict):
                call = part["functionCall"]
                index = self._tools
                self._tools += 1
                out.append(writer.tool_call_start(index, f"call_{index}", str(call.get("name") or "")))
                out.append(writer.tool_call_arguments(index, orjson.dumps(call.get("args") or {}).decode()))
        reason = candidate.get("finishReason") if candidate else ("SAFETY" if _blocked(response) else None)
        if reason and not self._finished:
            self._finished = True
            out.append(writer.finish(finish_reason(reason, self._tools > 0)))
