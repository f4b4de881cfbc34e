"""Engine-aware routing by saturation (`models[].routing.saturation`): whatever the strategy, a replica
whose own `/metrics` (vLLM, SGLang or TGI names) report a queue or KV-cache use past the thresholds
is skipped while another has room; when every one is saturated, traffic goes where the strategy says."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..upstreams.replica_mock import Replica, sglang_metrics, tgi_metrics, vllm_metrics
from .admin_client import AdminClient
from .conftest import make_client
from .gateway import MASTER_KEY, Gateway, running_gateway, write_config

TIMEOUTS = {"connect": 2, "first_byte": 5, "idle": 5, "total": 10}


@pytest.fixture(scope="module")
def replicas() -> Iterator[tuple[Replica, Replica]]:
    with Replica() as a, Replica() as b:
        yield a, b


@pytest.fixture(scope="module")
def gw(replicas: tuple[Replica, Replica], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    a, b = replicas
    cfg: dict[str, Any] = {
        "providers": [
            {"name": "a", "kind": "openai", "base_url": a.base_url, "api_key": "sk-up"},
            {"name": "b", "kind": "openai", "base_url": b.base_url, "api_key": "sk-up"},
        ],
        "models": [
            {
                "name": "pool",
                "timeouts": TIMEOUTS,
                "routing": {"strategy": "round_robin", "saturation": {"max_waiting": 4, "max_kv_cache": 0.9}},
                "deployments": [{"provider": "a", "model": "m-a"}, {"provider": "b", "model": "m-b"}],
            },
            {
                # LoRA adapters served as model names (`lora/<adapter>` → `<adapter>` on either replica).
                "name": "lora/*",
                "timeouts": TIMEOUTS,
                "routing": {"strategy": "round_robin", "saturation": {}},
                "deployments": [{"provider": "a", "model": "*"}, {"provider": "b", "model": "*"}],
            },
            {
                # No routing.saturation: the fair queue's defaults (max_waiting 4, max_kv_cache 0.95).
                "name": "queued",
                "timeouts": TIMEOUTS,
                "routing": {"strategy": "round_robin"},
                "queue": {"by": "key", "target_in_flight": 4},
                "deployments": [{"provider": "a", "model": "m-a"}, {"provider": "b", "model": "m-b"}],
            },
        ],
        "auth": {"master_key": MASTER_KEY},
        "routing": {"engine_metrics": {"interval_s": 0.1, "timeout_s": 0.5, "stale_after_s": 2}},
    }
    workdir: Path = tmp_path_factory.mktemp("saturation")
    with running_gateway(["--config", str(write_config(cfg, workdir / "g.yaml"))], workdir, config=cfg) as g:
        yield g


def publish(
    gw: Gateway, a: Replica, b: Replica, text_a: str, text_b: str, running: tuple[float, float]
) -> None:
    """Set both pages and wait (bounded) until the gateway has read them."""
    a.metrics_text, b.metrics_text = text_a, text_b
    admin = AdminClient(gw, MASTER_KEY)
    deadline = time.monotonic() + 5
    while True:
        rows = {r["deployment"]: r["engine"] for r in admin.ok("GET", "/deployments")["data"]}
        seen = tuple(rows[k]["running"] if rows[k] else None for k in ("a/m-a", "b/m-b"))
        if seen == running:
            return
        assert time.monotonic() < deadline, f"the gateway did not read the new load: {rows}"
        time.sleep(0.05)


def served(gw: Gateway, n: int, model: str = "pool") -> list[str]:
    with make_client(gw) as client:
        return [
            client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": "hi"}]
            ).headers["x-gatecore-model"]
            for _ in range(n)
        ]


def test_a_saturated_replica_is_skipped_while_another_has_room(
    gw: Gateway, replicas: tuple[Replica, Replica]
) -> None:
    a, b = replicas
    # Round robin alone would alternate; a's queue is past max_waiting.
    publish(gw, a, b, vllm_metrics(running=8, waiting=6, kv_cache=0.5), vllm_metrics(3, 0, 0.4), (8, 3))
    assert served(gw, 6) == ["b/m-b"] * 6
    # KV cache past the threshold (SGLang's token_usage), b has room (TGI's names).
    publish(
        gw,
        a,
        b,
        sglang_metrics(running=5, waiting=0, token_usage=0.97),
        tgi_metrics(batch=4, queue=1),
        (5, 4),
    )
    assert served(gw, 4) == ["b/m-b"] * 4
    # Both have room again: round robin as usual.
    publish(gw, a, b, vllm_metrics(2, 0, 0.2), vllm_metrics(1, 0, 0.2), (2, 1))
    assert sorted(set(served(gw, 4))) == ["a/m-a", "b/m-b"]


def test_when_every_replica_is_saturated_traffic_still_flows(
    gw: Gateway, replicas: tuple[Replica, Replica]
) -> None:
    a, b = replicas
    publish(gw, a, b, vllm_metrics(9, 7, 0.99), vllm_metrics(7, 5, 0.98), (9, 7))
    assert sorted(set(served(gw, 4))) == ["a/m-a", "b/m-b"]


def test_the_fair_queue_sends_nothing_to_a_saturated_replica_while_another_has_room(
    gw: Gateway, replicas: tuple[Replica, Replica]
) -> None:
    a, b = replicas
    publish(gw, a, b, vllm_metrics(running=8, waiting=2, kv_cache=0.97), vllm_metrics(2, 0, 0.3), (8, 2))
    assert served(gw, 6, "queued") == ["b/m-b"] * 6
    # Every replica saturated: the pool still serves (one request at a time from this worker).
    publish(gw, a, b, vllm_metrics(9, 7, 0.99), vllm_metrics(7, 5, 0.98), (9, 7))
    assert len(served(gw, 4, "queued")) == 4


def lora_info(running: str, at: float = 1.7e9) -> str:
    """vLLM's `vllm:lora_requests_info` gauge (its value: the time of the report)."""
    return (
        "# TYPE vllm:lora_requests_info gauge\n"
        f'vllm:lora_requests_info{{max_lora="4",running_lora_adapters="{running}",waiting_lora_adapters=""}} {at}\n'
    )


def test_a_request_for_a_lora_adapter_prefers_the_replica_that_has_it_loaded(
    gw: Gateway, replicas: tuple[Replica, Replica]
) -> None:
    a, b = replicas
    publish(
        gw,
        a,
        b,
        vllm_metrics(2, 0, 0.2) + lora_info("chat-v1"),
        vllm_metrics(3, 0, 0.2) + lora_info("sql-v2,chat-v1"),
        (2, 3),
    )
    assert served(gw, 4, "lora/sql-v2") == ["b/sql-v2"] * 4
    # Loaded on both: round robin as usual; loaded nowhere: the same.
    assert sorted(set(served(gw, 4, "lora/chat-v1"))) == ["a/chat-v1", "b/chat-v1"]
    assert sorted(set(served(gw, 4, "lora/other"))) == ["a/other", "b/other"]
