"""In-process microbenchmark: the per-event cost of the Gemini stream encoder (OpenAI chunk → GenerateContentResponse chunks).

Feeds N synthetic OpenAI `chat.completion.chunk` events (text deltas, or tool-call argument deltas) to
`GeminiEncoder.feed`, one event per call as a streamed upstream delivers them (tool-call arguments are kept and sent whole at the end), and reports µs per
event (best of REPEATS). No server, no network; bounded by N and REPEATS.

    PYTHONPATH=python .venv/bin/python benches/gemini_encoder.py [N] [REPEATS]
"""

from __future__ import annotations

import sys
import time

import orjson

from gatecore.request import Usage
from gatecore.translate.hub_stream_to_gemini import GeminiEncoder

BASE = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def text_events(n: int) -> list[bytes]:
    chunks = [
        {**BASE, "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}]}
        for i in range(n)
    ]
    return [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks]


def tool_events(n: int) -> list[bytes]:
    first = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": '{"a": 0'},
    }
    chunks = [{**BASE, "choices": [{"index": 0, "delta": {"tool_calls": [first]}, "finish_reason": None}]}]
    for i in range(n - 1):
        piece = f', "k{i}": {i}' if i < n - 2 else "}"
        fragment = {"index": 0, "function": {"arguments": piece}}
        chunks.append(
            {**BASE, "choices": [{"index": 0, "delta": {"tool_calls": [fragment]}, "finish_reason": None}]}
        )
    return [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks]


def per_event_us(events: list[bytes], repeats: int) -> float:
    finish = (
        b"data: "
        + orjson.dumps({**BASE, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        + b"\n\n"
    )
    best = float("inf")
    for _ in range(repeats):
        encoder = GeminiEncoder("gemini-alias", "req_bench", False, True, True)
        started = time.perf_counter_ns()
        for event in events:
            encoder.feed(event)
        encoder.feed(finish)
        encoder.finish(Usage(10, len(events)))
        best = min(best, (time.perf_counter_ns() - started) / 1000 / (len(events) + 1))
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    print(
        f"text deltas:          {per_event_us(text_events(n), repeats):.2f} µs/event ({n} events, best of {repeats})"
    )
    print(
        f"tool-argument deltas: {per_event_us(tool_events(n), repeats):.2f} µs/event ({n} events, best of {repeats})"
    )


if __name__ == "__main__":
    main()
