"""Strategies per model (weighted, round robin, least in-flight, lowest latency) and tag routing, over
two loopback replicas; counts come from the replicas' own request records."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ..upstreams.replica_mock import Replica
from .admin_client import AdminClient
from .conftest import make_async_client, make_client
from .gateway import MASTER_KEY, Gateway, running_gateway, write_config

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
TIMEOUTS = {"connect": 2, "first_byte": 5, "idle": 5, "total": 10}


def pool(
    name: str, routing: dict[str, Any] | None = None, weights: tuple[float, float] = (1, 1)
) -> dict[str, Any]:
    model: dict[str, Any] = {
        "name": name,
        "timeouts": TIMEOUTS,
        "deployments": [
            {"provider": "a", "model": "m-a", "weight": weights[0], "tags": ["eu", "gpu"]},
            {"provider": "b", "model": "m-b", "weight": weights[1], "tags": ["us", "gpu"]},
        ],
    }
    if routing is not None:
        model["routing"] = routing
    return model


@pytest.fixture(scope="module")
def replicas() -> Iterator[tuple[Replica, Replica]]:
    with Replica() as a, Replica() as b:
        yield a, b


@pytest.fixture(scope="module")
def gw(replicas: tuple[Replica, Replica], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    a, b = replicas
    cfg = {
        "providers": [
            {"name": "a", "kind": "openai", "base_url": a.base_url, "api_key": "sk-up"},
            {"name": "b", "kind": "openai", "base_url": b.base_url, "api_key": "sk-up"},
        ],
        "models": [
            pool("weighted", weights=(3, 1)),
            pool("rr", {"strategy": "round_robin"}),
            pool("least-inflight", {"strategy": "least_inflight"}),
            pool("lowest-latency", {"strategy": "lowest_latency", "ewma_alpha": 0.5}),
            pool("affine", {"prefix_affinity_bytes": 128}),
        ],
        "auth": {"master_key": MASTER_KEY},
    }
    workdir: Path = tmp_path_factory.mktemp("strategies")
    with running_gateway(["--config", str(write_config(cfg, workdir / "g.yaml"))], workdir, config=cfg) as g:
        yield g


@pytest.fixture(autouse=True)
def fresh(replicas: tuple[Replica, Replica]) -> None:
    for replica in replicas:
        replica.clear()
        replica.steer = {}


async def burst(gw: Gateway, model: str, total: int, concurrency: int) -> None:
    """`total` chat requests, `concurrency` at a time (bounded: one client, a semaphore)."""
    gate = asyncio.Semaphore(concurrency)
    async with make_async_client(gw) as client:

        async def one() -> None:
            async with gate:
                await client.chat.completions.create(model=model, messages=MESSAGES)

        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(total))), timeout=60)


def test_weighted_distribution_over_1000_requests(gw: Gateway, replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    asyncio.run(burst(gw, "weighted", 1000, 16))
    assert a.hits + b.hits == 1000
    # Weights 3:1 → 750 expected on `a`; the standard deviation is about 14, so ±70 is 5 of them.
    assert 680 <= a.hits <= 820, (a.hits, b.hits)


def test_round_robin_alternates(gw: Gateway, replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    with make_client(gw) as client:
        served = [
            client.chat.completions.with_raw_response.create(model="rr", messages=MESSAGES).headers[
                "x-gatecore-model"
            ]
            for _ in range(10)
        ]
    assert (a.hits, b.hits) == (5, 5)
    assert all(served[i] != served[i + 1] for i in range(9))


def test_least_inflight_spreads_concurrent_requests_evenly(
    gw: Gateway, replicas: tuple[Replica, Replica]
) -> None:
    a, b = replicas
    # Every request stays in flight 0.5 s, so all 8 are in flight at once when the later ones are
    # routed: least in-flight splits them 4/4 (weighted random would only by chance).
    a.steer = b.steer = {"first_byte_delay_ms": 500}
    asyncio.run(burst(gw, "least-inflight", 8, 8))
    assert (a.hits, b.hits) == (4, 4)


def test_least_inflight_steers_away_from_a_stuck_replica(
    gw: Gateway, replicas: tuple[Replica, Replica]
) -> None:
    a, b = replicas
    a.steer = {"first_byte_delay_ms": 1500}

    async def run() -> None:
        async with make_async_client(gw) as client:
            stuck = asyncio.ensure_future(_until_on(client, a))
            await asyncio.sleep(0.2)
            # `a` holds one request: every sequential request now goes to `b`.
            for _ in range(10):
                await client.chat.completions.create(model="least-inflight", messages=MESSAGES)
            await asyncio.wait_for(stuck, 10)

    asyncio.run(run())
    assert a.hits == 1
    assert b.hits >= 10


async def _until_on(client: openai.AsyncOpenAI, a: Replica) -> None:
    # One request, which the tie-break may route to either replica; repeat until `a` holds one.
    for _ in range(4):
        before = a.hits
        task = asyncio.ensure_future(
            client.chat.completions.create(model="least-inflight", messages=MESSAGES)
        )
        await asyncio.sleep(0.1)
        if a.hits > before:
            await task
            return
        await task


def test_lowest_latency_prefers_the_fast_replica(gw: Gateway, replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    a.steer = {"first_byte_delay_ms": 300}
    with make_client(gw) as client:
        for _ in range(30):
            client.chat.completions.create(model="lowest-latency", messages=MESSAGES)
    # One request each to measure both, then `b`, except a 5 % exploration share (half of it to `a`).
    assert a.hits <= 5, (a.hits, b.hits)
    assert b.hits >= 25
    rows = AdminClient(gw, MASTER_KEY).ok("GET", "/deployments")["data"]
    ttft = {r["deployment"]: r["ttft_ms"] for r in rows if r["model"] == "lowest-latency"}
    assert ttft["a/m-a"] > 250
    assert ttft["b/m-b"] < ttft["a/m-a"]


@pytest.mark.parametrize(("tags", "expected"), [("eu", "a/m-a"), ("us", "b/m-b"), ("gpu, us", "b/m-b")])
def test_tag_routing(gw: Gateway, replicas: tuple[Replica, Replica], tags: str, expected: str) -> None:
    with make_client(gw) as client:
        for _ in range(6):
            raw = client.chat.completions.with_raw_response.create(
                model="weighted", messages=MESSAGES, extra_headers={"x-gatecore-tags": tags}
            )
            assert raw.headers["x-gatecore-model"] == expected


def test_tags_no_deployment_has_is_400(gw: Gateway) -> None:
    with make_client(gw) as client, pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="weighted", messages=MESSAGES, extra_headers={"x-gatecore-tags": "eu,us"}
        )
    assert info.value.status_code == 400
    assert "x-gatecore-tags" in info.value.message


def test_prefix_affinity_keeps_a_prefix_on_one_replica(
    gw: Gateway, replicas: tuple[Replica, Replica]
) -> None:
    served: dict[int, set[str]] = {}
    with make_client(gw) as client:
        for i in range(12):
            system = f"You are assistant number {i:03d}. " + "Follow the house rules. " * 8
            for j in range(3):
                raw = client.chat.completions.with_raw_response.create(
                    model="affine",
                    messages=[
                        {"role": "system", "content": system},
                        {"role": "user", "content": f"question {j}: what is {j} + {i}?"},
                    ],
                )
                served.setdefault(i, set()).add(raw.headers["x-gatecore-model"])
    # Every prefix stayed on one replica; different prefixes spread over both.
    assert all(len(deployments) == 1 for deployments in served.values()), served
    assert set().union(*served.values()) == {"a/m-a", "b/m-b"}


def test_strategy_config_errors_are_reported(tmp_path: Path) -> None:
    from .gateway import run_cli

    cfg = {
        "providers": [{"name": "a", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"}],
        "models": [
            {
                "name": "m",
                "deployments": [{"provider": "a", "model": "x"}],
                "routing": {"strategy": "fastest", "shed_status": 500},
                "retries": {"count": -1},
            }
        ],
        "routing": {"breaker": {"error_rate": 2}},
    }
    started = time.monotonic()
    result = run_cli(["check", "--config", str(write_config(cfg, tmp_path / "bad.yaml"))])
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "models[0].routing.strategy: unknown strategy 'fastest'" in out
    assert "models[0].routing.shed_status: must be 429 or 503" in out
    assert "models[0].retries.count: must be between 0 and 20" in out
    assert "routing.breaker.error_rate" in out
    assert time.monotonic() - started < 30
