"""Pricing through the real server: the shipped table by upstream model name, a config override, and
GPU-time pricing of a local deployment (requests side by side share the pool's time)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from gatecore.pricing import price_table

from ..upstreams.openai_mock import MockUpstream
from .conftest import make_client
from .gateway import MASTER_KEY, Gateway, GatewayFactory
from .ledger_store import LedgerStore

GPU_HOUR_USD, GPUS = 36.0, 2  # 0.02 USD per second for the pool


def pricing_config(upstream: MockUpstream, store_url: str) -> dict[str, Any]:
    def model(name: str, upstream_model: str, pricing: dict[str, Any] | None = None) -> dict[str, Any]:
        deployment: dict[str, Any] = {"provider": "up", "model": upstream_model}
        if pricing is not None:
            deployment["pricing"] = pricing
        return {"name": name, "deployments": [deployment]}

    return {
        "providers": [
            {"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "${UP_KEY}"}
        ],
        "models": [
            model("mini", "gpt-4o-mini-2024-07-18"),
            model("override", "gpt-4o", {"input_per_1m": 10.0, "output_per_1m": 20.0}),
            model("local", "llama-3.1-8b", {"gpu_hour_usd": GPU_HOUR_USD, "gpus": GPUS}),
            model("unpriced", "llama-3.1-8b"),
        ],
        "auth": {"master_key": MASTER_KEY},
        "store": {"url": store_url},
        "ledger": {"flush_interval_s": 0.05},
    }


@pytest.fixture
def priced(
    gateway_factory: GatewayFactory, upstream: MockUpstream, tmp_path: Path
) -> tuple[Gateway, LedgerStore]:
    store = LedgerStore(f"sqlite:///{tmp_path / 'pricing.db'}")
    return gateway_factory(pricing_config(upstream, store.url)), store


def _chat(gw: Gateway, model: str, stream: bool = False, mock: dict[str, Any] | None = None) -> str:
    rid = f"price-{uuid.uuid4().hex[:10]}"
    with make_client(gw) as client:
        answer = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "one two three four five"}],
            stream=stream,
            extra_headers={"x-request-id": rid},
            extra_body={"mock": mock} if mock else None,
        )
        if stream:
            for _ in answer:
                pass
    return rid


def test_table_and_override_prices(priced: tuple[Gateway, LedgerStore], upstream: MockUpstream) -> None:
    gw, store = priced
    rids = {model: _chat(gw, model) for model in ("mini", "override", "unpriced")}
    rows = {r["request_id"]: r for r in store.wait_rows(set(rids.values()))}
    input_usd, output_usd, _ = price_table.OPENAI["gpt-4o-mini"]  # the dated snapshot's family
    for model, (in_usd, out_usd) in {"mini": (input_usd, output_usd), "override": (10.0, 20.0)}.items():
        usage = upstream.wait_for(rids[model]).response_json["usage"]
        expected = (usage["prompt_tokens"] * in_usd + usage["completion_tokens"] * out_usd) / 1e6
        assert rows[rids[model]]["cost_usd"] == pytest.approx(expected, rel=1e-12)
        assert expected > 0
    assert rows[rids["unpriced"]]["cost_usd"] == 0.0  # no list price, no override: free


def test_gpu_time_is_shared_by_concurrent_requests(priced: tuple[Gateway, LedgerStore]) -> None:
    gw, store = priced
    slow = {"chunks": 10, "gap_ms": 60}  # about 0.6 s of streaming
    lone = _chat(gw, "local", stream=True, mock=slow)
    pair: list[str] = []
    barrier = threading.Barrier(2)

    def one() -> None:
        barrier.wait()
        pair.append(_chat(gw, "local", stream=True, mock=slow))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    rows = {r["request_id"]: r for r in store.wait_rows({lone, *pair})}
    rate = GPU_HOUR_USD * GPUS / 3600
    alone = rows[lone]
    alone_s = alone["latency_ms"] / 1000
    # Alone on the pool: its whole duration (the GPU clock runs from routing to the ledger's record).
    assert alone["gpu_seconds"] == pytest.approx(alone_s, rel=0.15)
    assert alone["cost_usd"] == pytest.approx(alone["gpu_seconds"] * rate, rel=1e-9)
    for rid in pair:
        row = rows[rid]
        share = row["gpu_seconds"] / (row["latency_ms"] / 1000)
        assert 0.4 <= share <= 0.65, f"side by side, each pays about half its time (got {share:.2f})"
        assert row["cost_usd"] == pytest.approx(row["gpu_seconds"] * rate, rel=1e-9)
        assert row["input_tokens"] > 0  # tokens are still recorded


def test_gpu_time_is_shared_across_workers(
    gateway_factory: GatewayFactory, upstream: MockUpstream, tmp_path: Path
) -> None:
    """With two workers the shares still split the pool's time: requests side by side on different
    workers (told apart by their ledger row ids, `<worker tag>:<sequence>`) each pay part of it."""
    store = LedgerStore(f"sqlite:///{tmp_path / 'workers.db'}")
    gw = gateway_factory(pricing_config(upstream, store.url), workers=2)
    slow = {"chunks": 10, "gap_ms": 60}  # about 0.6 s of streaming
    for _ in range(5):  # until the kernel hands the connections to both workers (bounded)
        rids: list[str] = []
        barrier = threading.Barrier(4)

        def one(barrier: threading.Barrier = barrier, rids: list[str] = rids) -> None:
            barrier.wait()
            rids.append(_chat(gw, "local", stream=True, mock=slow))

        threads = [threading.Thread(target=one) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        rows = [row for row in store.wait_rows(set(rids)) if row["request_id"] in rids]
        if len({row["id"].split(":")[0] for row in rows}) == 2:
            break
    else:
        pytest.fail("the requests never reached both workers")
    started = [row["at"] for row in rows]
    ended = [row["at"] + row["latency_ms"] / 1000 for row in rows]
    busy = max(ended) - min(started)  # they overlap: the pool was busy from the first to the last
    assert sum(row["gpu_seconds"] for row in rows) == pytest.approx(busy, rel=0.15)
    for row in rows:
        share = row["gpu_seconds"] / (row["latency_ms"] / 1000)
        assert 0.15 <= share <= 0.4, f"four side by side each pay about a quarter (got {share:.2f})"
