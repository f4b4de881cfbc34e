"""Engine-aware routing: replicas publish their own load on a Prometheus `/metrics` page (vLLM,
SGLang and TGI names); gatecore polls it in the background, sends traffic to the least loaded replica,
and sheds with a Retry-After derived from the queue when every replica is past `max_queue`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ..upstreams.replica_mock import Replica, sglang_metrics, tgi_metrics, vllm_metrics
from .admin_client import AdminClient
from .conftest import make_client
from .gateway import MASTER_KEY, Gateway, running_gateway, write_config

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
TIMEOUTS = {"connect": 2, "first_byte": 5, "idle": 5, "total": 10}


@pytest.fixture(scope="module")
def replicas() -> Iterator[tuple[Replica, Replica]]:
    with Replica() as a, Replica() as b:
        yield a, b


def model(name: str, **routing: Any) -> dict[str, Any]:
    return {
        "name": name,
        "timeouts": TIMEOUTS,
        "routing": {"strategy": "least_loaded", **routing},
        "deployments": [{"provider": "a", "model": "m-a"}, {"provider": "b", "model": "m-b"}],
    }


@pytest.fixture(scope="module")
def gw(replicas: tuple[Replica, Replica], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    a, b = replicas
    cfg = {
        "providers": [
            {"name": "a", "kind": "openai", "base_url": a.base_url, "api_key": "sk-up"},
            {"name": "b", "kind": "openai", "base_url": b.base_url, "api_key": "sk-up"},
        ],
        "models": [
            model("engines"),
            model("shed-429", max_queue=5),
            model("shed-503", max_queue=5, shed_status=503),
        ],
        "auth": {"master_key": MASTER_KEY},
        "routing": {"engine_metrics": {"interval_s": 0.1, "timeout_s": 0.5, "stale_after_s": 2}},
    }
    workdir: Path = tmp_path_factory.mktemp("engines")
    with running_gateway(["--config", str(write_config(cfg, workdir / "g.yaml"))], workdir, config=cfg) as g:
        yield g


@pytest.fixture(autouse=True)
def fresh(replicas: tuple[Replica, Replica]) -> None:
    for replica in replicas:
        replica.clear()
        replica.steer = {}
        replica.metrics_status = 200


def engine_rows(gw: Gateway, model_name: str = "engines") -> dict[str, Any]:
    rows = AdminClient(gw, MASTER_KEY).ok("GET", "/deployments")["data"]
    return {r["deployment"]: r["engine"] for r in rows if r["model"] == model_name}


def publish(
    gw: Gateway, a: Replica, b: Replica, text_a: str, text_b: str, waiting: tuple[float, float]
) -> None:
    """Set both pages and wait (bounded) until the gateway has read them."""
    a.metrics_text, b.metrics_text = text_a, text_b
    deadline = time.monotonic() + 5
    while True:
        rows = engine_rows(gw)
        seen = tuple(rows[k]["waiting"] if rows[k] else None for k in ("a/m-a", "b/m-b"))
        if seen == waiting:
            return
        assert time.monotonic() < deadline, f"the gateway did not read the new load: {rows}"
        time.sleep(0.05)


def served(gw: Gateway, model_name: str, n: int) -> list[str]:
    with make_client(gw) as client:
        return [
            client.chat.completions.with_raw_response.create(model=model_name, messages=MESSAGES).headers[
                "x-gatecore-model"
            ]
            for _ in range(n)
        ]


def test_traffic_goes_to_the_least_loaded_replica(gw: Gateway, replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    publish(gw, a, b, vllm_metrics(running=16, waiting=9, kv_cache=0.93), vllm_metrics(2, 0, 0.2), (9, 0))
    assert served(gw, "engines", 10) == ["b/m-b"] * 10
    assert a.hits == 0
    # The load moves: so does the traffic.
    publish(gw, a, b, vllm_metrics(1, 0, 0.1), vllm_metrics(30, 12, 0.97), (0, 12))
    assert served(gw, "engines", 10) == ["a/m-a"] * 10
    rows = engine_rows(gw)
    assert rows["b/m-b"]["running"] == 30
    assert rows["b/m-b"]["kv_cache"] == pytest.approx(0.97)
    assert a.metrics_hits > 5  # polled in the background, not per request


def test_kv_cache_breaks_ties(gw: Gateway, replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    publish(gw, a, b, vllm_metrics(4, 0, 0.2), vllm_metrics(4, 0, 0.9), (0, 0))
    assert served(gw, "engines", 5) == ["a/m-a"] * 5


def test_sglang_and_tgi_pages(gw: Gateway, replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    publish(
        gw, a, b, sglang_metrics(running=7, waiting=3, token_usage=0.6), tgi_metrics(batch=5, queue=1), (3, 1)
    )
    rows = engine_rows(gw)
    assert (rows["a/m-a"]["running"], rows["a/m-a"]["kv_cache"]) == (7, pytest.approx(0.6))
    assert rows["b/m-b"]["running"] == 5
    assert served(gw, "engines", 4) == ["b/m-b"] * 4


def test_every_replica_past_max_queue_sheds_with_retry_after(
    gw: Gateway, replicas: tuple[Replica, Replica]
) -> None:
    a, b = replicas
    # b is the least loaded (9 waiting, 3 running): a second per batch of three → Retry-After: 3.
    publish(gw, a, b, vllm_metrics(4, 12), vllm_metrics(3, 9), (12, 9))
    with make_client(gw) as client:
        with pytest.raises(openai.RateLimitError) as limited:
            client.chat.completions.create(model="shed-429", messages=MESSAGES)
        with pytest.raises(openai.InternalServerError) as unavailable:
            client.chat.completions.create(model="shed-503", messages=MESSAGES)
    assert limited.value.status_code == 429
    assert limited.value.response.headers["retry-after"] == "3"
    body = limited.value.response.json()
    assert body["error"]["code"] == "engines_busy"
    assert body["error"]["type"] == "rate_limit_error"
    assert unavailable.value.status_code == 503
    assert unavailable.value.response.headers["retry-after"] == "3"
    assert a.hits == b.hits == 0
    # One replica drains below the depth: traffic flows to it again.
    publish(gw, a, b, vllm_metrics(4, 12), vllm_metrics(3, 2), (12, 2))
    assert served(gw, "shed-429", 3) == ["b/m-b"] * 3


def test_unreadable_metrics_still_route(gw: Gateway, replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    publish(gw, a, b, vllm_metrics(1, 0), vllm_metrics(1, 0), (0, 0))
    a.metrics_status = b.metrics_status = 500
    time.sleep(2.3)  # past stale_after_s: the figures no longer count
    assert len(served(gw, "shed-429", 4)) == 4
    assert a.hits + b.hits == 4
