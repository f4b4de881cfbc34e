"""In-process: a published prompt's call vs the chat call it renders to, through the real handlers
(body read, auth, the prompt stage, routing, limits, the buffered relay) against an instant upstream
(benches/routing_overhead.py's), ledger and metrics off, the prompt's head and version cached.

    PYTHONPATH=python .venv/bin/python benches/prompt_inprocess.py [N]          µs per request
    PYTHONPATH=python CASE=prompt valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benches/prompt_inprocess.py 300     # then 1300; the difference / 1000 is
                                                             # instructions per request (CASE=chat too)
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benches.routing_overhead import KEY, Headers, InstantProvider, Proto

import gatecore.prompts.catalog as catalog_module
from gatecore.admin.access import Caller
from gatecore.config.load import load_config
from gatecore.policy.key_policy import KeyPolicy
from gatecore.server.app import GatewayApp
from gatecore.worker import Worker

catalog_module.HEAD_TTL_S = 1e9  # under valgrind a second is a few hundred requests: no re-reads
CHAT = (
    b'{"model":"one","messages":[{"role":"system","content":"You are a terse assistant."},'
    b'{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32,"temperature":0}'
)
PROMPT = b'{"variables":{"words":"one short sentence"}}'
SPEC = {
    "name": "bench",
    "model": "one",
    "messages": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Say hello in {{ words }}."},
    ],
    "variables": {"type": "object", "properties": {"words": {"type": "string"}}, "required": ["words"]},
    "params": {"max_tokens": 32, "temperature": 0},
}


class Scope:
    proto = "http"
    method = "POST"
    query_string = ""

    def __init__(self, path: str, body: bytes):
        self.path = path
        self.headers = Headers({"authorization": f"Bearer {KEY}", "content-length": str(len(body))})


async def run(n: int) -> None:
    store = Path(tempfile.mkdtemp()) / "store.db"
    config = {
        "providers": [{"name": "p", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"}],
        "models": [{"name": "one", "deployments": [{"provider": "p", "model": "m"}]}],
        "auth": {"master_key": KEY},
        "ledger": {"enabled": False},
        "telemetry": {"metrics": False},
        "store": {"url": f"sqlite:///{store}"},
    }
    app, worker = GatewayApp(), Worker(load_config(config))
    await worker.start()
    app.serve(worker)
    route = worker.routes.find("one")
    assert route is not None and worker.admin is not None
    for deployment in route.deployments:
        deployment.provider = InstantProvider()  # type: ignore[assignment]
    admin = Caller(KeyPolicy("bench", "bench", "", None, source="cli", role="admin"))
    await worker.admin.handle(admin, "POST", "/prompts", "", msgspec.json.encode(SPEC))
    cases: dict[str, tuple[Any, Scope, bytes]] = {
        "chat": (app.routes["/v1/chat/completions"]["POST"], Scope("/v1/chat/completions", CHAT), CHAT),
        "prompt": (app._prompt_methods["POST"], Scope("/v1/prompts/bench", PROMPT), PROMPT),
    }
    only = os.environ.get("CASE")
    best: dict[str, float] = {}
    for _ in range(1 if only else 5):
        for name, (handler, scope, body) in cases.items():
            if only and name != only:
                continue
            proto = Proto(body)
            started = time.perf_counter_ns()
            for _ in range(n):
                await handler(scope, proto)
                await asyncio.sleep(0)  # a turn of the loop: the recorders run
            best[name] = min(best.get(name, float("inf")), (time.perf_counter_ns() - started) / n / 1000)
    for name, micros in best.items():
        print(f"{name:6s} {micros:7.2f} µs/request")
    await worker.aclose()


if __name__ == "__main__":
    uvloop.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
