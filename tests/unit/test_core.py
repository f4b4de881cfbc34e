"""Calls every export of `gatecore._core` (the contract in `_core.pyi`) with real assertions.

The Rust cores have their own `cargo test` suites; this checks the Python boundary: argument
and return types, properties, errors, and the zero-copy paths.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatecore._core import (
    Http1Parser,
    SseRelay,
    count_tokens,
    insert_json_member,
    replace_json_string_field,
)

# --- Http1Parser ---------------------------------------------------------------------------------

CHUNKED = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=UTF-8\r\n"
    b"Transfer-Encoding: chunked\r\nX-Request-Id: abc\r\n\r\n"
    b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
)


def test_http1_chunked_byte_by_byte() -> None:
    parser = Http1Parser()
    assert not parser.head_complete
    assert parser.status == 0
    body = b"".join(parser.feed(CHUNKED[i : i + 1]) for i in range(len(CHUNKED)))
    assert body == b"hello world"
    assert parser.head_complete
    assert parser.complete
    assert parser.status == 200
    assert parser.keep_alive
    assert not parser.truncated
    assert parser.content_type == b"text/event-stream; charset=utf-8"
    assert parser.headers == [
        (b"content-type", b"Text/Event-Stream; charset=UTF-8"),
        (b"transfer-encoding", b"chunked"),
        (b"x-request-id", b"abc"),
    ]


def test_http1_content_length_and_reuse() -> None:
    parser = Http1Parser()
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"
    assert parser.feed(head) == b""
    assert parser.head_complete and not parser.complete
    data = b'{"ok":true}'
    out = parser.feed(data)
    assert out is data  # the whole input is body: returned without a copy
    assert parser.complete
    parser.reset()
    assert not parser.head_complete and parser.status == 0 and parser.content_type == b""
    assert parser.feed(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nnoEXTRA") == b"no"
    assert parser.status == 404 and parser.complete


def test_http1_until_eof_and_truncation() -> None:
    parser = Http1Parser()
    assert parser.feed(b"HTTP/1.0 200 OK\r\n\r\nabc") == b"abc"
    assert not parser.keep_alive and not parser.complete
    parser.feed_eof()
    assert parser.complete and not parser.truncated

    parser = Http1Parser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    parser.feed_eof()
    assert parser.truncated and not parser.complete


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"HTTP/1.1 abc OK\r\n\r\n", "invalid status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "invalid content-length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000, "response head too large"),
    ],
)
def test_http1_malformed(data: bytes, message: str) -> None:
    parser = Http1Parser()
    with pytest.raises(ValueError, match=message):
        parser.feed(data)


# --- SseRelay ------------------------------------------------------------------------------------


def chunk(model: str, delta: dict[str, object], finish: str | None = None) -> bytes:
    event = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


def test_sse_relay_stream() -> None:
    usage_only = (
        b'data: {"id":"chatcmpl-1","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,'
        b'"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":3},'
        b'"completion_tokens_details":{"reasoning_tokens":1}}}\n\n'
    )
    body = (
        b": ping\n\n"
        + chunk("gpt-4o", {"role": "assistant", "content": "hello"})
        + chunk("gpt-4o", {"content": " world"}, "stop")
        + usage_only
        + b"data: [DONE]\n\n"
    )
    relay = SseRelay(model="alias", strip_usage_only=True, count_output=True, encoding="cl100k_base")
    split = len(body) // 2
    out = relay.feed(body[:split]) + relay.feed(body[split:]) + relay.finish()
    want = (body.replace(usage_only, b"")).replace(b'"model":"gpt-4o"', b'"model":"alias"')
    assert out == want
    assert relay.done
    assert relay.events == 2
    assert relay.usage == (9, 2, 3, 1)
    assert relay.error is None
    assert relay.malformed_events == 0
    assert relay.first_choice_finish_reason == "stop"
    assert relay.output_tokens() == 2


def test_sse_relay_passthrough_errors_and_malformed() -> None:
    relay = SseRelay()
    data = b'data: {"error":{"message":"overloaded","code":503}}\n\ndata: {oops\n\n'
    assert relay.feed(data) is data  # unchanged output is the input object itself
    assert relay.error == b'{"message":"overloaded","code":503}'
    assert relay.malformed_events == 1
    assert relay.events == 2
    assert relay.usage is None
    assert relay.first_choice_finish_reason is None
    assert relay.held_bytes == 0
    assert relay.feed(b"data: [DO") == b""
    assert relay.held_bytes == len(b"data: [DO")
    assert relay.finish() == b"data: [DO"


def test_sse_relay_docstring_example() -> None:
    relay = SseRelay(model="my-model")
    assert (
        relay.feed(b'data: {"model":"gpt-4o","choices":[]}\n\ndata: [DO')
        == b'data: {"model":"my-model","choices":[]}\n\n'
    )
    assert relay.feed(b"NE]\n\n") == b"data: [DONE]\n\n"
    assert relay.done


def test_sse_relay_long_output_and_bad_encoding() -> None:
    relay = SseRelay(count_output=True)
    words = "lorem ipsum dolor sit amet " * 200
    relay.feed(chunk("m", {"content": words}))
    assert relay.output_tokens() == count_tokens(words)
    assert SseRelay(count_output=False).output_tokens() == 0
    with pytest.raises(ValueError, match="unknown encoding"):
        SseRelay(encoding="gpt2")


# --- functions -----------------------------------------------------------------------------------


def test_count_tokens() -> None:
    assert count_tokens("hello world") == 2
    assert count_tokens("hello world", "cl100k_base") == 2
    assert count_tokens("") == 0
    assert count_tokens("x" * 10_000) > 0  # GIL released path
    assert count_tokens("\ud800 lone surrogate") > 0
    with pytest.raises(ValueError, match="unknown encoding"):
        count_tokens("hi", encoding="p50k_base")


def test_replace_json_string_field() -> None:
    body = b'{"messages":[{"role":"user","content":"\\"model\\": \\"x\\"","model":"m"}],"model" : "gpt-4o"}'
    out = replace_json_string_field(body, "model", 'a"b')
    assert out == body.replace(b'"model" : "gpt-4o"', b'"model" : "a\\"b"')
    assert out is not None and json.loads(out)["model"] == 'a"b'
    assert replace_json_string_field(b'{"model":1}', "model", "x") is None
    assert replace_json_string_field(b'{"other":"x"}', "model", "x") is None
    assert replace_json_string_field(b'["model"]', "model", "x") is None


def test_insert_json_member() -> None:
    raw = b'{"include_usage":true}'
    assert insert_json_member(b'{"a": 1}', "stream_options", raw) == (
        b'{"stream_options":{"include_usage":true},"a": 1}'
    )
    assert insert_json_member(b" { } ", "n", b"1") == b' { "n":1} '
    assert insert_json_member(b"[]", "n", b"1") is None
    with pytest.raises(ValueError, match="raw_value"):
        insert_json_member(b"{}", "n", b"")


# --- EventStreamDecoder ----------------------------------------------------------------------------


def test_event_stream_decoder_against_independent_frames() -> None:
    from gatecore._core import EventStreamDecoder

    from ..upstreams.event_stream_frames import event, exception

    stream = event("messageStart", {"role": "assistant"}) + exception("throttlingException", "slow down")
    decoder = EventStreamDecoder()
    out = []
    for i in range(len(stream)):  # one byte at a time
        out.extend(decoder.feed(stream[i : i + 1]))
    decoder.finish()
    assert [(t, k) for t, k, _ in out] == [("event", "messageStart"), ("exception", "throttlingException")]
    assert json.loads(out[0][2])["role"] == "assistant"
    assert json.loads(out[1][2]) == {"message": "slow down"}
    assert decoder.held_bytes == 0


def test_event_stream_decoder_errors() -> None:
    from gatecore._core import EventStreamDecoder

    from ..upstreams.event_stream_frames import event

    good = event("messageStop", {"stopReason": "end_turn"})
    bad = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(ValueError, match="message CRC mismatch"):
        EventStreamDecoder().feed(bad)
    decoder = EventStreamDecoder()
    assert decoder.feed(good[:20]) == []
    assert decoder.held_bytes == 20
    with pytest.raises(ValueError, match="truncated"):
        decoder.finish()


def test_counter_table_shared_between_mappings(tmp_path: Path) -> None:
    from gatecore._core import CounterTable

    path = str(tmp_path / "counters")
    first, second = CounterTable(path, 64), CounterTable(path, 64)
    slot = first.slot("key:k1:rpm")
    assert second.slot("key:k1:rpm") == slot and first.slots == 64
    minute = 60_000_000_000
    assert first.gcra_take(slot, 0, minute, 2, 1) == (True, 1, 30_000_000_000, 0)
    assert second.gcra_take(slot, 0, minute, 2, 1)[:2] == (True, 0)
    allowed, remaining, reset_ns, retry_ns = first.gcra_take(slot, 0, minute, 2, 1)
    assert (allowed, remaining, reset_ns, retry_ns) == (False, 0, minute, 30_000_000_000)
    assert first.gcra_take_upto(slot, 0, minute, 2, 1, 2) == (False, 0, minute, 30_000_000_000, 0)
    second.gcra_give(slot, minute, 2, 2)
    assert first.gcra_take_upto(slot, 0, minute, 2, 1, 5)[::4] == (True, 2)
    second.gcra_give(slot, minute, 2, 1)
    assert first.gcra_take(slot, 0, minute, 2, 1)[0]
    first.gcra_charge(slot, 0, minute, 2, 2)
    assert not second.gcra_take(slot, 0, minute, 2, 1)[0]
    conc = first.slot("key:k1:parallel")
    assert first.acquire(conc, 1) == (True, 1) and second.acquire(conc, 1) == (False, 1)
    second.release(conc)
    assert first.load(conc) == 0
    spend = first.slot("key:k1:budget")
    # A reservation passes only when it fits under the limit, whichever mapping takes it.
    assert first.reserve(spend, 10, 7) == (True, 7) and second.reserve(spend, 10, 7) == (False, 7)
    assert second.reserve(spend, 10, 3) == (True, 10) and first.reserve(spend, 10, 1) == (False, 10)
    assert second.adjust(spend, -20) == 0 and first.used() == 3
    with pytest.raises(OSError):
        CounterTable(path, 128)
    with pytest.raises(ValueError):
        CounterTable(None, 1)
