"""The OpenAI mock's `POST /v1/responses`: OpenAI's Responses API, written from its API reference.

Steered by the same ``"mock": {...}`` body field as chat (openai_knobs.py; a pass-through gateway
forwards it): `status`/`error` answer an error, `content` replaces the text (default
``"mock: " + <last user text>``), `tool_calls` answers `function_call` items, `cut_after` cuts a stream
after that many events. Streams send the reference's event sequence with sequence numbers; usage
counts words.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .mock_server import RecordedRequest
from .openai_knobs import MockOptions, default_error
from .openai_requests import error_body


def last_user_text(body: dict[str, Any]) -> str:
    given = body.get("input")
    if isinstance(given, str):
        return given
    for item in reversed(given if isinstance(given, list) else []):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            texts = [
                p.get("text", "")
                for p in content or []
                if isinstance(p, dict) and p.get("type") == "input_text"
            ]
            return " ".join(texts)
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            return "results: " + str(item.get("output"))
    return ""


def response_object(body: dict[str, Any], opts: MockOptions, rid: str) -> dict[str, Any]:
    """The finished `response` for a request."""
    output: list[dict[str, Any]] = []
    text = opts.content if opts.content is not None else None
    if text is None and not opts.tool_calls:
        text = "mock: " + last_user_text(body)
    if text is not None:
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        output.append({"id": f"msg_{rid}", "type": "message", "status": "completed", "role": "assistant",
                       "content": [part]})  # fmt: skip
    for i, call in enumerate(opts.tool_calls):
        output.append({"id": f"fc_{rid}_{i}", "type": "function_call", "status": "completed",
                       "call_id": call.get("id") or f"call_{rid}_{i}", "name": call["name"],
                       "arguments": call.get("arguments", "{}")})  # fmt: skip
    words_in = len(json.dumps(body.get("input")).split())
    words_out = sum(len(json.dumps(o).split()) for o in output)
    return {
        "id": f"resp_up_{rid}", "object": "response", "created_at": 1_700_000_000, "status": "completed",
        "error": None, "incomplete_details": None, "model": body.get("model"), "output": output,
        "tools": body.get("tools") or [], "store": body.get("store", True),
        "usage": {"input_tokens": words_in, "input_tokens_details": {"cached_tokens": 1},
                  "output_tokens": words_out, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": words_in + words_out},
    }  # fmt: skip


def stream_events(response: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The reference's events for `response`, without their sequence numbers."""
    started = {**response, "status": "in_progress", "output": [], "usage": None}
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": started}),
        ("response.in_progress", {"response": started}),
    ]
    for index, item in enumerate(response["output"]):
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            part = item["content"][0]
            events.append(("response.output_item.added",
                           {"output_index": index, "item": {**item, "status": "in_progress", "content": []}}))  # fmt: skip
            events.append(
                ("response.content_part.added", {**where, "content_index": 0, "part": {**part, "text": ""}})
            )
            pieces = part["text"].split(" ")
            events.extend(
                (
                    "response.output_text.delta",
                    {**where, "content_index": 0, "delta": p if i == 0 else " " + p},
                )
                for i, p in enumerate(pieces)
            )
            events.append(("response.output_text.done", {**where, "content_index": 0, "text": part["text"]}))
            events.append(("response.content_part.done", {**where, "content_index": 0, "part": part}))
        else:
            events.append(("response.output_item.added",
                           {"output_index": index, "item": {**item, "status": "in_progress", "arguments": ""}}))  # fmt: skip
            events.append(("response.function_call_arguments.delta", {**where, "delta": item["arguments"]}))
            events.append(
                ("response.function_call_arguments.done", {**where, "arguments": item["arguments"]})
            )
        events.append(("response.output_item.done", {"output_index": index, "item": item}))
    events.append(("response.completed", {"response": response}))
    return events


async def answer_responses(request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
    """Answer one recorded `POST /v1/responses`."""
    body = recorded.body_json
    opts = MockOptions.from_body(body)
    try:
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or "input" not in body:
            recorded.status = 400
            err = error_body("model and input are required", "invalid_request_error")
            return web.json_response(err, status=400)
        if opts.status is not None and opts.status >= 400:
            recorded.status = opts.status
            error = opts.error if opts.error is not None else default_error(opts.status)
            return web.json_response({"error": error}, status=opts.status)
        response = response_object(body, opts, recorded.request_id or "x")
        recorded.status = 200
        if body.get("stream") is not True:
            recorded.response_json = response
            return web.json_response(response)
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await stream.prepare(request)
        for seq, (name, data) in enumerate(stream_events(response)):
            if opts.cut_after is not None and seq == opts.cut_after:
                assert request.transport is not None
                request.transport.abort()
                recorded.aborted = True
                return stream
            event = f"event: {name}\ndata: {json.dumps({'type': name, 'sequence_number': seq, **data})}\n\n"
            await stream.write(event.encode())
            recorded.events.append(event.encode())
        await stream.write_eof()
        return stream
    finally:
        recorded.finished.set()
