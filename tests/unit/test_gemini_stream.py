"""The Gemini stream encoder on what the mock upstream does not produce: several candidates
interleaved, tool-call fragments of two candidates, thoughts, cached and reasoning usage, the JSON
array framing, and broken streams."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gatecore.errors import GatewayError, UpstreamProtocolError
from gatecore.request import Usage
from gatecore.translate.hub_stream_to_gemini import GeminiEncoder


def encoder(sse: bool = True, thoughts: bool = False) -> GeminiEncoder:
    return GeminiEncoder("alias", "req_1", thoughts, True, sse)


def event(*choices: dict[str, Any], end: bytes = b"\n\n") -> bytes:
    return b"data: " + json.dumps({"id": "chatcmpl-7", "choices": list(choices)}).encode() + end


def choice(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"index": index, "delta": delta, "finish_reason": finish}


def sse(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(block.removeprefix("data: ")) for block in data.decode().split("\r\n\r\n") if block]


def call(
    index: int, call_id: str | None = None, name: str | None = None, arguments: str = ""
) -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": arguments}
    if name is not None:
        function["name"] = name
    out: dict[str, Any] = {"index": index, "function": function}
    if call_id is not None:
        out["id"] = call_id
    return out


def test_two_candidates_text_and_tool_calls_interleaved() -> None:
    enc = encoder()
    out = enc.feed(
        event(choice(0, {"content": "a"}), choice(1, {"tool_calls": [call(0, "c1", "f", '{"x"')]}))
        + event(choice(1, {"tool_calls": [call(0, arguments=": 1}")]}), choice(0, {"content": "b"}, "stop"))
        + event(choice(1, {"tool_calls": [call(1, "c2", "g", "{}")]}, "tool_calls"))
    )
    chunks = sse(out)
    texts = [
        (c["index"], p["text"]) for ch in chunks for c in ch["candidates"] for p in c["content"]["parts"]
    ]
    assert texts == [(0, "a"), (0, "b")]
    last = sse(enc.finish(Usage(10, 7, cached_tokens=4, reasoning_tokens=3)))[0]
    assert last["responseId"] == "chatcmpl-7" and last["modelVersion"] == "alias"
    first, second = last["candidates"]
    assert first == {"finishReason": "STOP", "index": 0}
    assert second["content"]["parts"] == [
        {"functionCall": {"name": "f", "args": {"x": 1}, "id": "c1"}},
        {"functionCall": {"name": "g", "args": {}, "id": "c2"}},
    ]
    assert second["finishReason"] == "STOP"
    assert last["usageMetadata"] == {
        "promptTokenCount": 10,
        "candidatesTokenCount": 4,
        "totalTokenCount": 17,
        "cachedContentTokenCount": 4,
        "thoughtsTokenCount": 3,
    }


def test_thoughts_only_when_asked() -> None:
    delta = {"reasoning_content": "hmm", "content": "ok"}
    asked = sse(encoder(thoughts=True).feed(event(choice(0, delta))))
    assert asked[0]["candidates"][0]["content"]["parts"] == [{"text": "hmm", "thought": True}, {"text": "ok"}]
    plain = sse(encoder().feed(event(choice(0, delta))))
    assert plain[0]["candidates"][0]["content"]["parts"] == [{"text": "ok"}]


def test_json_array_framing_with_crlf_events() -> None:
    enc = encoder(sse=False)
    body = enc.feed(event(choice(0, {"content": "a"}), end=b"\r\n\r\n"))
    body += enc.feed(event(choice(0, {"content": "b"}, "length")) + b"data: [DONE]\n\n")
    body += enc.finish(Usage(1, 2))
    elements = json.loads(body)
    assert [e["candidates"][0].get("finishReason") for e in elements] == [None, None, "MAX_TOKENS"]


def test_error_event_closes_the_array() -> None:
    enc = encoder(sse=False)
    body = enc.feed(event(choice(0, {"content": "a"})))
    with pytest.raises(GatewayError) as raised:
        enc.feed(b'data: {"error": {"message": "boom", "type": "rate_limit_exceeded"}}\n\n')
    body += enc.error_event(raised.value)
    elements = json.loads(body)
    assert elements[-1]["error"] == {"code": 429, "message": "boom", "status": "RESOURCE_EXHAUSTED"}


@pytest.mark.parametrize(
    "events",
    [
        event(choice(0, {"content": "a"})),  # no finish reason
        event(choice(0, {"tool_calls": [call(0, "c", "f", "[1]")]}, "tool_calls")),  # args not an object
    ],
)
def test_broken_streams_raise(events: bytes) -> None:
    enc = encoder()
    enc.feed(events)
    with pytest.raises(UpstreamProtocolError):
        enc.finish(Usage())


def test_non_json_event_raises_and_keeps_what_came_before() -> None:
    enc = encoder()
    with pytest.raises(UpstreamProtocolError):
        enc.feed(event(choice(0, {"content": "a"})) + b"data: {nope\n\n")
    tail = sse(enc.error_event(UpstreamProtocolError("bad")))
    assert tail[0]["candidates"][0]["content"]["parts"] == [{"text": "a"}]
    assert "error" in tail[1]
