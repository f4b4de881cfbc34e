"""Replicas of one model for routing tests: each an OpenAI-compatible `MockUpstream` whose behaviour
the test sets for every request it gets (not per body: a gateway sends the same body to each replica
it tries), plus a Prometheus `/metrics` page with chosen engine figures.

    with Replica() as primary, Replica() as secondary:
        primary.steer = {"status": 500}                   # every request: 500
        primary.script.append({"status": 429, "headers": {"Retry-After": "1"}})  # the next one only
        secondary.metrics_text = vllm_metrics(running=2, waiting=7)
        ...
        assert primary.hits == 1

Steering keys are `openai_mock.MockOptions` keys (README.md), `headers` included (response headers
added to any answer).

`GET /health` answers `health_status` (200 by default), like vLLM's and SGLang's health endpoint;
checks are counted in `health_hits` and not recorded as requests. `GET /v1/models` is the OpenAI
mock's list (openai_answers.MOCK_MODELS), recorded like every request of that mock.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from aiohttp import web

from .openai_mock import MockUpstream, RecordedRequest


class Replica(MockUpstream):
    """One replica: `steer` applies to every request, `script` entries to the next ones, one each."""

    def __init__(self) -> None:
        super().__init__()
        self.steer: dict[str, Any] = {}
        self.script: deque[dict[str, Any]] = deque()
        self.metrics_text = ""
        self.metrics_status = 200
        self.metrics_hits = 0
        self.health_status = 200
        self.health_hits = 0
        self._steer_lock = threading.Lock()

    @property
    def hits(self) -> int:
        """Inference requests received (POSTs), whatever was answered."""
        return sum(1 for r in self.requests if r.method == "POST")

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health", self._health)

    async def _health(self, request: web.Request) -> web.StreamResponse:
        self.health_hits += 1
        return web.Response(status=self.health_status)

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        self.metrics_hits += 1
        return web.Response(
            status=self.metrics_status,
            body=self.metrics_text.encode(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    async def record(self, request: web.Request) -> RecordedRequest:
        recorded = await super().record(request)
        if request.method != "POST":
            return recorded
        with self._steer_lock:
            steer = self.script.popleft() if self.script else dict(self.steer)
        body = recorded.body_json
        if steer and isinstance(body, dict):
            recorded.body_json = {**body, "mock": steer}
        return recorded


def vllm_metrics(running: float, waiting: float, kv_cache: float = 0.1, model: str = "m") -> str:
    """A vLLM `/metrics` page (Prometheus text format) with these gauges, as vLLM names them."""
    labels = f'{{engine="0",model_name="{model}"}}'
    return (
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        f"vllm:num_requests_running{labels} {running}\n"
        "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
        "# TYPE vllm:num_requests_waiting gauge\n"
        f"vllm:num_requests_waiting{labels} {waiting}\n"
        "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n"
        "# TYPE vllm:kv_cache_usage_perc gauge\n"
        f"vllm:kv_cache_usage_perc{labels} {kv_cache}\n"
        "# HELP vllm:request_success_total Count of successfully processed requests.\n"
        "# TYPE vllm:request_success_total counter\n"
        f'vllm:request_success_total{{engine="0",finished_reason="stop",model_name="{model}"}} 12.0\n'
    )


def sglang_metrics(running: float, waiting: float, token_usage: float = 0.1, model: str = "m") -> str:
    """An SGLang `/metrics` page (launched with --enable-metrics) with these gauges."""
    labels = f'{{model_name="{model}"}}'
    return (
        "# HELP sglang:num_running_reqs The number of running requests.\n"
        "# TYPE sglang:num_running_reqs gauge\n"
        f"sglang:num_running_reqs{labels} {running}\n"
        "# HELP sglang:num_queue_reqs The number of requests in the waiting queue.\n"
        "# TYPE sglang:num_queue_reqs gauge\n"
        f"sglang:num_queue_reqs{labels} {waiting}\n"
        "# HELP sglang:token_usage The token usage.\n"
        "# TYPE sglang:token_usage gauge\n"
        f"sglang:token_usage{labels} {token_usage}\n"
    )


def tgi_metrics(batch: float, queue: float) -> str:
    """A TGI `/metrics` page with its batch size and queue size gauges (TGI labels neither)."""
    return (
        "# TYPE tgi_batch_current_size gauge\n"
        f"tgi_batch_current_size {batch}\n"
        "# TYPE tgi_queue_size gauge\n"
        f"tgi_queue_size {queue}\n"
        "# TYPE tgi_request_count counter\n"
        "tgi_request_count 40\n"
    )
