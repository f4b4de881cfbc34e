"""In-process microbenchmark: the per-event cost of `/v1/responses`' stream encoder, both ways it runs.

- hub → Responses (translation): N synthetic OpenAI `chat.completion.chunk` events (text deltas, or
  tool-call argument deltas) fed to `ResponsesEncoder.feed` one event per call, as a streamed upstream
  delivers them, then the finish (its `response.completed` carries the whole response).
- Responses → Responses (pass-through): N `response.output_text.delta` events of a native upstream
  relayed by the same encoder (lifecycle events parsed, deltas passed as they are).

Reports µs per event (best of REPEATS). No server, no network; bounded by N and REPEATS.

    PYTHONPATH=python .venv/bin/python benches/responses_encoder.py [N] [REPEATS]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from gatecore.request import Usage
from gatecore.translate.hub_response_to_responses import ResponseShape
from gatecore.translate.hub_stream_to_responses import ResponsesEncoder

sys.path.insert(0, str(Path(__file__).parent))  # the chunks of benches/anthropic_encoder.py
from anthropic_encoder import BASE, text_events, tool_events

ECHO = {"instructions": None, "metadata": {}, "previous_response_id": None, "tools": [], "store": False}
FINISH = (
    b"data: "
    + orjson.dumps({**BASE, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    + b"\n\n"
)


def native_events(n: int) -> tuple[list[bytes], bytes]:
    def event(name: str, seq: int, data: dict[str, object]) -> bytes:
        return (
            f"event: {name}\ndata: ".encode()
            + orjson.dumps({"type": name, "sequence_number": seq, **data})
            + b"\n\n"
        )

    response = {"id": "resp_b", "object": "response", "model": "up", "status": "in_progress", "output": []}
    events = [event("response.created", 0, {"response": response})]
    where = {"item_id": "msg_b", "output_index": 0, "content_index": 0}
    events += [
        event("response.output_text.delta", i + 1, {**where, "delta": f"tok{i} "}) for i in range(n - 1)
    ]
    done = {**response, "status": "completed", "usage": {"input_tokens": 10, "output_tokens": n}}
    return events, event("response.completed", n, {"response": done})


def per_event_us(events: list[bytes], finish: bytes, repeats: int, check: Callable[[bytes], None]) -> float:
    best = float("inf")
    for _ in range(repeats):
        encoder = ResponsesEncoder(ResponseShape("gpt-alias", None, lambda: ECHO), True)
        started = time.perf_counter_ns()
        out = b""
        for event in events:
            out = encoder.feed(event)
        out += encoder.feed(finish)
        out += encoder.finish(Usage(10, len(events)))
        best = min(best, (time.perf_counter_ns() - started) / 1000 / (len(events) + 1))
        check(out)
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5

    def completed(out: bytes) -> None:
        assert b"response.completed" in out, out[-300:]

    def relayed(out: bytes) -> None:
        assert b'"model":"gpt-alias"' in out, out[-300:]

    native, native_finish = native_events(n)
    for label, events, finish, check in (
        ("hub→Responses text deltas:         ", text_events(n), FINISH, completed),
        ("hub→Responses tool-argument deltas:", tool_events(n), FINISH, completed),
        ("Responses pass-through deltas:     ", native, native_finish, relayed),
    ):
        print(
            f"{label} {per_event_us(events, finish, repeats, check):.2f} µs/event ({n} events, best of {repeats})"
        )


if __name__ == "__main__":
    main()
