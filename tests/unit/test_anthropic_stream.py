"""The Anthropic stream encoder on framings the mock upstream does not produce: CRLF, multi-line data,
comments, interleaved tool-call fragments, cached-token usage."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gatecore.errors import UpstreamProtocolError, UpstreamStreamError
from gatecore.request import Usage
from gatecore.translate.hub_stream_to_anthropic import AnthropicEncoder


def encoder() -> AnthropicEncoder:
    return AnthropicEncoder("alias", "req_1", ("END",), False, True)


def chunk(delta: dict[str, Any], finish: str | None = None, **choice: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-7", "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **choice}]}


def event(obj: dict[str, Any], end: bytes = b"\n\n") -> bytes:
    return b"data: " + json.dumps(obj).encode() + end


def parse(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in data.decode().split("\n\n"):
        if block:
            name, payload = block.split("\n")
            out.append((name.removeprefix("event: "), json.loads(payload.removeprefix("data: "))))
    return out


def test_crlf_events_and_an_lf_leading_the_next_read() -> None:
    enc = encoder()
    first = event(chunk({"content": "a"}), b"\r\n\r")  # the blank line's LF comes with the next read
    second = b"\n" + event(chunk({"content": "b"}), b"\r\n\r\n")
    events = parse(enc.feed(first) + enc.feed(second))
    assert [n for n, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
    ]
    assert [p["delta"]["text"] for n, p in events if n == "content_block_delta"] == ["a", "b"]
    assert events[0][1]["message"]["id"] == "msg_7"


def test_multi_line_data_and_comments() -> None:
    enc = encoder()
    obj = json.dumps(chunk({"content": "x"}), indent=1).replace("\n", "\ndata: ")
    events = parse(enc.feed(b": keep-alive\n\n" + b"data: " + obj.encode() + b"\n\n"))
    assert [n for n, _ in events] == ["ping", "message_start", "content_block_start", "content_block_delta"]


def test_stop_sequence_and_cached_usage() -> None:
    enc = encoder()
    enc.feed(event(chunk({"content": "x"})) + event(chunk({}, "stop", stop_reason="END")))
    events = parse(enc.finish(Usage(input_tokens=100, output_tokens=7, cached_tokens=60)))
    assert events == [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"},
                "usage": {"input_tokens": 40, "output_tokens": 7, "cache_read_input_tokens": 60},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def test_fragments_for_a_stopped_tool_call_are_refused_with_earlier_events_kept() -> None:
    enc = encoder()
    call = {"index": 0, "id": "c0", "type": "function", "function": {"name": "f", "arguments": ""}}
    second = {"index": 1, "id": "c1", "type": "function", "function": {"name": "g", "arguments": ""}}
    late = {"index": 0, "function": {"arguments": "{}"}}
    batch = b"".join(event(chunk({"tool_calls": [c]})) for c in (call, second, late))
    with pytest.raises(UpstreamProtocolError):
        enc.feed(batch)
    events = parse(enc.error_event(UpstreamStreamError("broken")))
    assert [n for n, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_stop",
        "content_block_start",
        "error",
    ]
    assert events[-1][1] == {"type": "error", "error": {"type": "api_error", "message": "broken"}}
    assert enc.feed(event(chunk({"content": "more"}))) == b""


def test_end_before_the_finish_reason_is_an_error() -> None:
    enc = encoder()
    enc.feed(event(chunk({"content": "x"})))
    with pytest.raises(UpstreamProtocolError, match="before the model finished"):
        enc.finish(Usage())
