"""Tool-call arguments through the Anthropic stream encoder under Hypothesis (issue 25; LiteLLM #27144
dropped them): any JSON arguments of any number of calls, their OpenAI deltas cut anywhere and the
SSE bytes split anywhere between reads (joined by the `_core` relay as in a stream), come out as `input_json_delta` fragments that join to exactly
the arguments sent, each under its call's id and name. Nothing lost, nothing merged across calls.

Bounded in CI (derandomized, GATECORE_FUZZ_EXAMPLES examples, 150 by default).
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatecore._core import SseRelay
from gatecore.request import Usage
from gatecore.translate.hub_stream_to_anthropic import AnthropicEncoder

EXAMPLES = int(os.environ.get("GATECORE_FUZZ_EXAMPLES", "150"))

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53), max_value=2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)
arguments = st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=5)
names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,20}", fullmatch=True)


def _cuts(draw: st.DrawFn, text: str) -> list[str]:
    points = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=6))) if len(text) > 1 else []
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    obj = {"id": "chatcmpl-f", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[tuple[str, str, dict[str, Any]]], list[bytes]]:
    calls = [(f"call_{i}", draw(names), draw(arguments)) for i in range(draw(st.integers(1, 3)))]
    events = [_event({"role": "assistant", "content": None})]
    for index, (call_id, name, args) in enumerate(calls):
        pieces = _cuts(draw, json.dumps(args, ensure_ascii=False))
        function = {"name": name, "arguments": ""}
        if draw(st.booleans()):  # OpenAI sends the first piece with the head, or after it
            function["arguments"] = pieces.pop(0)
        first = {"index": index, "id": call_id, "type": "function", "function": function}
        events.append(_event({"tool_calls": [first]}))
        events += [_event({"tool_calls": [{"index": index, "function": {"arguments": p}}]}) for p in pieces]
    events.append(_event({}, "tool_calls"))
    data = b"".join(events)
    reads = [data[a:b] for a, b in _byte_cuts(draw, len(data))]
    return calls, reads


def _byte_cuts(draw: st.DrawFn, size: int) -> list[tuple[int, int]]:
    points = sorted(draw(st.sets(st.integers(1, size - 1), max_size=8)))
    bounds = [0, *points, size]
    return list(itertools.pairwise(bounds))


@settings(
    max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(streams())
def test_tool_arguments_survive_any_split(
    stream: tuple[list[tuple[str, str, dict[str, Any]]], list[bytes]],
) -> None:
    calls, reads = stream
    # As relay/streaming.py: the relay splits the upstream's reads into whole events, the encoder
    # translates them.
    relay = SseRelay(None, True, True, "o200k_base")
    enc = AnthropicEncoder("alias", "req_1", (), False, True)
    out = b"".join(enc.feed(relay.feed(read)) for read in reads)
    out += enc.feed(relay.finish()) + enc.finish(Usage(input_tokens=1, output_tokens=1))
    blocks: dict[int, dict[str, Any]] = {}
    for block in out.decode().split("\n\n"):
        if not block:
            continue
        name, payload = block.split("\n", 1)
        event = json.loads(payload.removeprefix("data: "))
        if name == "event: content_block_start" and event["content_block"]["type"] == "tool_use":
            blocks[event["index"]] = {**event["content_block"], "json": ""}
        elif name == "event: content_block_delta" and event["delta"]["type"] == "input_json_delta":
            blocks[event["index"]]["json"] += event["delta"]["partial_json"]
    got = [
        (b["id"], b["name"], json.loads(b["json"]) if b["json"] else {}) for _, b in sorted(blocks.items())
    ]
    assert got == calls
