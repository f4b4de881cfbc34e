"""In-process microbenchmark: µs per inference request through the whole pipeline without a network.

Runs the real `POST /v1/chat/completions` handler (body read, auth, policy fields, routing stage, the
upstream call, the buffered relay, response headers) N times on uvloop against an in-memory upstream
that answers at once, for a model with 1 deployment and one with 8 weighted deployments, and reports
µs per request (best of REPEATS). Each request is followed by one turn of the loop, as in the server,
where the recorders run (`Recording.finished`, earlier `Gateway.finished`); figures before 2026-12-06 had none. No retry happens: this is the happy path's cost. Two more rows
price the capability filter on the same 8-deployment pool: `tools8`, a request with `tools` (the
filter's slow path), and `long8`, a ~2 KB prompt for a model with a 1,000-token window (its tokens
counted per request). Bounded by N and REPEATS; works on any gatecore tree (to compare before/after,
point PYTHONPATH at either; a tree without the filter takes its plain path for those two).

    PYTHONPATH=python .venv/bin/python benches/routing_overhead.py [N] [REPEATS]

`ONLY=one` runs one row; `LIMITS=1` puts rpm, tpm and a budget on the model `one` (the limits
stage: its admission, budget estimate, headers and settle on every request). For instructions instead of time (these VMs drift 2× from day to day),
run it under callgrind at two N and divide the difference by the requests between them (each N runs
min(N, 2000) warm-up requests plus N × REPEATS measured ones):

    PYTHONPATH=python ONLY=one valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python benches/routing_overhead.py 500 1      # then 1500, and subtract
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import uvloop

from gatecore.config.load import load_config
from gatecore.server.app import GatewayApp
from gatecore.upstream.response import WholeAnswer

try:  # the tree since the chain (issue 16): the worker's composition root
    from gatecore.worker import Worker
except ImportError:  # earlier trees
    from gatecore.pipeline.gateway import Gateway as Worker  # type: ignore[no-redef]

KEY = "sk-bench-routing-0001"
ANSWER = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'
)


NAMES = tuple(os.environ.get("ONLY", "one pool8 tools8 long8").split())
BODIES = {
    "tools8": b'{"model":"%s","messages":[{"role":"user","content":"hi"}],'
    b'"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}',
    # ~2 KB of text, ~340 tokens: longer in bytes than the 1,000-token window, so it is counted.
    "long8": b'{"model":"%s","messages":[{"role":"user","content":"' + b"lorem ipsum " * 170 + b'"}]}',
}


class InstantProvider:
    name = "bench"
    tokenizer = "o200k_base"

    async def send(self, ctx: Any, upstream_model: str, timeouts: Any) -> WholeAnswer:
        return WholeAnswer(200, b"application/json", ANSWER)

    def is_stream(self, ctx: Any, response: Any) -> bool:
        return False

    def stream_decoder(self, ctx: Any) -> None:
        return None

    def decode_body(self, ctx: Any, body: bytes) -> bytes:
        return body

    def decode_error(self, status: int, body: bytes) -> Any:
        raise AssertionError("no error in this bench")


class Headers(dict[str, str]):
    pass


class Scope:
    proto = "http"
    method = "POST"
    path = "/v1/chat/completions"
    query_string = ""

    def __init__(self, body: bytes):
        self.headers = Headers({"authorization": f"Bearer {KEY}", "content-length": str(len(body))})


class Proto:
    def __init__(self, body: bytes):
        self.body = body
        self.sent = 0

    async def __call__(self) -> bytes:
        return self.body

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        assert status == 200, body
        self.sent += 1


def config() -> dict[str, Any]:
    provider = {"name": "p", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"}
    pool = [{"provider": "p", "model": f"m{i}", "weight": 1 + i % 3} for i in range(8)]
    return {
        "providers": [provider],
        "models": [
            {"name": "one", "deployments": [{"provider": "p", "model": "m"}]},
            {"name": "pool8", "deployments": pool},
            {"name": "tools8", "deployments": pool, "capabilities": {"tools": True}},
            {"name": "long8", "deployments": pool, "context_window": 1000},
        ],
        "auth": {"master_key": KEY},
        # The routing path alone: no ledger (it needs a store) and no metrics aggregation.
        "ledger": {"enabled": False},
        "telemetry": {"metrics": False},
    }


def limited(config: dict[str, Any]) -> dict[str, Any]:
    """`LIMITS=1`: rpm, tpm and a USD budget on the model `one` (never reached), its deployment
    priced: the limits stage's admission, its budget estimate and the settle on every request."""
    config["models"][0]["deployments"][0]["pricing"] = {"input_per_1m": 1.0, "output_per_1m": 2.0}
    config["limits"] = {"models": {"one": {"rpm": 100_000_000, "tpm": 10_000_000_000}}}
    config["budgets"] = {"models": {"one": {"usd": 1_000_000.0}}}
    return config


async def run(n: int, repeats: int) -> dict[str, float]:
    app = GatewayApp()
    gateway = Worker(load_config(limited(config()) if os.environ.get("LIMITS") else config()))
    if hasattr(app, "serve"):
        app.serve(gateway)
    else:  # earlier trees: the app built its routes at construction
        app.gateway = gateway
    for name in NAMES:
        route = gateway.routes.find(name)
        assert route is not None
        for deployment in route.deployments:
            deployment.provider = InstantProvider()  # type: ignore[assignment]
    handler = app.routes["/v1/chat/completions"]["POST"]
    results: dict[str, float] = {}
    for name in NAMES:
        body = BODIES.get(name, b'{"model":"%s","messages":[{"role":"user","content":"hi"}]}') % name.encode()
        scope, proto = Scope(body), Proto(body)
        for _ in range(min(n, 2000)):  # warm up
            await handler(scope, proto)
            await asyncio.sleep(0)  # a turn of the loop: the recorders run (Recording.finished)
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter_ns()
            for _ in range(n):
                await handler(scope, proto)
                await asyncio.sleep(0)  # a turn of the loop: the recorders run (Recording.finished)
            best = min(best, (time.perf_counter_ns() - started) / n / 1000)
        results[name] = best
    gateway.close()
    return results


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    results = uvloop.run(run(n, repeats))
    for name, micros in results.items():
        print(f"{name:6s} {micros:7.2f} µs/request (best of {repeats} runs of {n})")


if __name__ == "__main__":
    main()
