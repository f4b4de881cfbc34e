"""Issue 17, finding 4: concurrent requests overshoot a hard budget.

A budget admitted a reservation whenever the spend was below the limit, whatever the reservation, so
requests arriving together each reserved a share the budget could not pay for. The replay: a $12
budget, requests that reserve (and really cost) $8, eight at once on a slow upstream. Only one fits;
the old rule served two ($16). The same rule holds in the Redis script that replicas share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import redis

from gatecore.config.limits import RedisConfig
from gatecore.limits.redis_limiter import RedisLimiter
from gatecore.limits.rules import BUDGET, Rule

from ..e2e.conftest import make_async_client
from ..e2e.gateway import GatewayFactory
from ..e2e.test_budgets import BUDGET_KEY, budget_config
from ..e2e.test_limits import HI
from ..services.redis import RedisServer, running_redis
from ..upstreams.openai_mock import MockUpstream, RefusedPort

BUDGET_USD = 12.0
REQUEST_USD = 8.0  # 1 prompt token + 7 output tokens at $1 each


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


async def _burst(gateway: Any, n: int) -> list[int]:
    async with make_async_client(gateway, BUDGET_KEY) as client:

        async def one() -> int:
            try:
                await client.chat.completions.create(
                    model="gpt-slow",
                    messages=HI,
                    max_tokens=7,
                    extra_body={"mock": {"chunks": 7, "first_byte_delay_ms": 500}},
                )
            except openai.APIStatusError as exc:
                return exc.status_code
            return 200

        return await asyncio.gather(*(one() for _ in range(n)))


@pytest.mark.parametrize("shared", ["local", "redis"])
def test_concurrent_requests_never_reserve_past_a_hard_budget(
    gateway_factory: GatewayFactory,
    upstream: MockUpstream,
    refused: RefusedPort,
    shared: str,
    request: pytest.FixtureRequest,
) -> None:
    config = budget_config(upstream, refused, BUDGET_USD, period="monthly")
    if shared == "redis":
        config["redis"] = {"url": request.getfixturevalue("redis_server").url}
    gateway = gateway_factory(config)
    statuses = asyncio.run(_burst(gateway, 8))
    served = statuses.count(200)
    assert served * REQUEST_USD <= BUDGET_USD, statuses
    assert served == 1 and statuses.count(429) == 7, statuses


def test_the_redis_script_reserves_only_what_fits(redis_server: RedisServer) -> None:
    """The Lua admission script: exact reservations only when they fit; with a least, what every hard
    budget has left (each holding the smallest amount), refused below the least."""

    def budget(name: str, usd_micros: int) -> Rule:
        rule = Rule(BUDGET, f"key '{name}'", f"usd:key:{name}:p", usd_micros, False)
        rule.period = "monthly"
        return rule

    async def scenario() -> None:
        limiter = RedisLimiter(RedisConfig(url=redis_server.url, timeout_s=2), clock=lambda: 0.0)
        try:
            key, team = budget("k", 1_000_000), budget("t", 300_000)
            costs = [600_000]
            assert (await limiter.take([key], costs)).refused == -1  # type: ignore[union-attr]
            costs = [600_000]
            assert (await limiter.take([key], costs)).refused == 0  # type: ignore[union-attr]
            costs = [600_000, 600_000]
            outcome = await limiter.take([key, team], costs, min_micros=1)
            assert outcome is not None and outcome.refused == -1
            assert costs == [300_000, 300_000]  # the team's 300,000 is the least left
            costs = [600_000, 600_000]
            outcome = await limiter.take([key, team], costs, min_micros=1)
            assert outcome is not None and outcome.refused == 1  # the team budget is spent
            costs = [600_000]
            outcome = await limiter.take([key], costs, min_micros=100_001)
            assert outcome is not None and outcome.refused == 0  # 100,000 left: below the least
            costs = [600_000]
            outcome = await limiter.take([key], costs, min_micros=1)
            assert outcome is not None and outcome.refused == -1 and costs == [100_000]
        finally:
            await limiter.aclose()

    asyncio.run(scenario())
    values = redis.Redis(port=redis_server.port).mget(["gatecore:usd:key:k:p", "gatecore:usd:key:t:p"])
    assert values == [b"1000000", b"300000"]
