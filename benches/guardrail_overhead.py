"""In-process microbenchmark: what the guardrails add to a request and to a streamed chunk.

The whole `POST /v1/chat/completions` handler (as benches/routing_overhead.py: real chain, an
in-memory upstream that answers at once) for a ~1.5 KB chat body, to a model without guardrails and
to one with the default policy of the README (a PII guard with every built-in type redacted, on input
and output, and the prompt-injection guard), with and without PII in the prompt; best of REPEATS. The handler rows send one body again and
again, so the injection score comes from its per-text memo: `score` on unseen texts is its own row.
Then the answer side of a stream alone: `AnswerCheck.events` per content event of ~4 characters
(the window holds and releases) against the same events passing untouched.

    PYTHONPATH=python python benches/guardrail_overhead.py [N] [REPEATS]
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import orjson
import uvloop
from routing_overhead import KEY, InstantProvider, Proto, Scope

from gatecore._core import PiiScanner
from gatecore.config.guardrails import GuardrailConfig
from gatecore.config.load import load_config
from gatecore.guardrails.answer import AnswerCheck
from gatecore.guardrails.injection import score
from gatecore.guardrails.pii import PiiGuard
from gatecore.guardrails.tally import Tally
from gatecore.server.app import GatewayApp
from gatecore.worker import Worker

PROSE = "the gateway routes each request to a deployment and streams the answer back to the client. "
CLEAN = (PROSE * 16)[:1400]
WITH_PII = CLEAN[:1100] + " mail ann.lee@example.com, card 4111 1111 1111 1111, call +44 20 7946 0958 "


def config() -> dict[str, Any]:
    provider = {"name": "p", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"}
    entities = dict.fromkeys(PiiScanner.builtin_kinds(), "redact")
    return {
        "providers": [provider],
        "models": [
            {"name": "plain", "deployments": [{"provider": "p", "model": "m"}]},
            {
                "name": "guarded",
                "deployments": [{"provider": "p", "model": "m"}],
                "guardrails": ["pii", "injection"],
            },
        ],
        "guardrails": [
            {"name": "pii", "kind": "pii", "entities": entities},
            {"name": "injection", "kind": "prompt_injection"},
        ],
        "auth": {"master_key": KEY},
        "ledger": {"enabled": False},
        "telemetry": {"metrics": False},
    }


def body(model: str, text: str) -> bytes:
    return orjson.dumps(
        {
            "model": model,
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}],
        }
    )


async def handler_rows(n: int, repeats: int) -> dict[str, float]:
    app = GatewayApp()
    worker = Worker(load_config(config()))
    app.serve(worker)
    for name in ("plain", "guarded"):
        route = worker.routes.find(name)
        assert route is not None
        for deployment in route.deployments:
            deployment.provider = InstantProvider()  # type: ignore[assignment]
    handler = app.routes["/v1/chat/completions"]["POST"]
    rows = {
        "plain, 1.5 KB": body("plain", CLEAN),
        "guarded, 1.5 KB, no PII": body("guarded", CLEAN),
        "guarded, 1.5 KB, 3 PII": body("guarded", WITH_PII),
    }
    results: dict[str, float] = {}
    for name, data in rows.items():
        scope, proto = Scope(data), Proto(data)
        for _ in range(min(n, 2000)):
            await handler(scope, proto)
            await asyncio.sleep(0)
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter_ns()
            for _ in range(n):
                await handler(scope, proto)
                await asyncio.sleep(0)
            best = min(best, (time.perf_counter_ns() - started) / n / 1000)
        results[name] = best
    worker.close()
    return results


def stream_rows(n: int, repeats: int) -> dict[str, float]:
    guard = PiiGuard(
        GuardrailConfig(name="pii", kind="pii", entities=dict.fromkeys(PiiScanner.builtin_kinds(), "redact"))
    )
    template = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"content": "tok "}, "finish_reason": None}]}  # fmt: skip
    event = b"data: " + orjson.dumps(template) + b"\n\n"
    results: dict[str, float] = {}
    for name, guards in (("no output guard (pass-through)", ()), ("PII window 128 + 96", (guard,))):
        best = float("inf")
        for _ in range(repeats):
            check = AnswerCheck(guards, None, Tally())
            started = time.perf_counter_ns()
            for _ in range(n):
                check.events(event)
            check.end()
            best = min(best, (time.perf_counter_ns() - started) / n / 1000)
        results[name] = best
    return results


def score_row(n: int, repeats: int) -> float:
    """`injection.score` on a fresh 1.5 KB clean text (the handler rows hit its per-text memo)."""
    texts = [f"request {i}: {CLEAN}" for i in range(n)]
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter_ns()
        for text in texts:
            score(text)
        best = min(best, (time.perf_counter_ns() - started) / n / 1000)
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    for name, micros in uvloop.run(handler_rows(n, repeats)).items():
        print(f"handler  {name:28s} {micros:7.2f} µs/request")
    print(f"score    injection, 1.5 KB, unseen text  {score_row(n, repeats):7.2f} µs/text")
    for name, micros in stream_rows(n * 4, repeats).items():
        print(f"stream   {name:28s} {micros:7.2f} µs/event")


if __name__ == "__main__":
    main()
