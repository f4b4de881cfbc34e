"""The guard work alone per request, for instruction counts on a noisy machine: `GuardInput` (the
README's default policy) on an unseen 1.5 KB chat body, then `AnswerCheck.body` on a mock answer.

    cd benches && PYTHONPATH=../python valgrind --tool=callgrind python guardrail_guard_cost.py 1000 R
    # (instructions at R=1 - instructions at R=0) / 1000 = instructions per request
"""

from __future__ import annotations

import sys
import time
import types

import guardrail_overhead as go
import orjson

from gatecore.config.load import load_config
from gatecore.guardrails.stage import GuardInput

ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-mock0001",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there, a mock answer of a few words."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    }
)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    stage = GuardInput(load_config(go.config()))
    route = types.SimpleNamespace(name="guarded")
    bodies = [go.body("guarded", f"request {i}: " + go.CLEAN) for i in range(n * max(rounds, 1))]
    best = float("inf")
    for r in range(rounds):
        started = time.perf_counter_ns()
        for data in bodies[r * n : (r + 1) * n]:
            ctx = types.SimpleNamespace(
                route=route, key=None, prompt=None, body=data, body_capture=None, guard=None,
                client_model="guarded", request_id="r",
            )  # fmt: skip
            stage(ctx)  # type: ignore[arg-type]
            ctx.guard.body(ANSWER)
        best = min(best, (time.perf_counter_ns() - started) / n / 1000)
    if rounds:
        print(f"guard work (input stage + answer body), unseen 1.5 KB: {best:.2f} µs/request")


if __name__ == "__main__":
    main()
