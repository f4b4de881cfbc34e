"""Hedged requests (opt-in per model): a slow first attempt gets a second one on another deployment;
the first answer wins, the loser's connection is closed, and only the winner is relayed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from openai.types.chat import ChatCompletionMessageParam

from ..upstreams.replica_mock import Replica
from .conftest import make_client
from .gateway import MASTER_KEY, Gateway, GatewayFactory

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture
def replicas() -> Iterator[tuple[Replica, Replica]]:
    with Replica() as primary, Replica() as secondary:
        yield primary, secondary


def start(factory: GatewayFactory, primary: Replica, secondary: Replica, hedge: dict[str, Any]) -> Gateway:
    return factory(
        {
            "providers": [
                {"name": "primary", "kind": "openai", "base_url": primary.base_url, "api_key": "sk-up"},
                {"name": "secondary", "kind": "openai", "base_url": secondary.base_url, "api_key": "sk-up"},
            ],
            "models": [
                {
                    "name": "hedged",
                    "timeouts": {"connect": 2, "first_byte": 10, "idle": 5, "total": 20},
                    "routing": {"hedge": hedge},
                    "deployments": [
                        {"provider": "primary", "model": "up-a"},
                        {"provider": "secondary", "model": "up-b", "priority": 1},
                    ],
                }
            ],
            "auth": {"master_key": MASTER_KEY},
        }
    )


def ask(gw: Gateway, stream: bool = False) -> tuple[str, str, str]:
    with make_client(gw) as client:
        if stream:
            with client.chat.completions.with_streaming_response.create(
                model="hedged", messages=MESSAGES, stream=True
            ) as response:
                text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
                return text, response.headers["x-gatecore-model"], response.headers["x-gatecore-attempts"]
        raw = client.chat.completions.with_raw_response.create(model="hedged", messages=MESSAGES)
        content = raw.parse().choices[0].message.content or ""
        return content, raw.headers["x-gatecore-model"], raw.headers["x-gatecore-attempts"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_hedge_wins_on_a_slow_primary(
    gateway_factory: GatewayFactory, replicas: tuple[Replica, Replica], stream: bool
) -> None:
    primary, secondary = replicas
    gw = start(gateway_factory, primary, secondary, {"delay_s": 0.2})
    primary.steer = {"first_byte_delay_ms": 3000}
    started = time.monotonic()
    assert ask(gw, stream) == ("mock: hi", "secondary/up-b", "2")
    assert time.monotonic() - started < 2
    # The loser's exchange was closed at once, not left to finish.
    (slow,) = primary.requests
    assert slow.disconnected.wait(2)
    assert slow.disconnected_at is not None and slow.disconnected_at - slow.received_at < 1.5
    assert slow.status is None  # it never answered
    assert secondary.hits == 1


def test_no_hedge_when_the_primary_is_fast(
    gateway_factory: GatewayFactory, replicas: tuple[Replica, Replica]
) -> None:
    primary, secondary = replicas
    gw = start(gateway_factory, primary, secondary, {"delay_s": 0.5})
    for _ in range(5):
        assert ask(gw) == ("mock: hi", "primary/up-a", "1")
    assert secondary.hits == 0


def test_hedge_delay_follows_the_observed_p95(
    gateway_factory: GatewayFactory, replicas: tuple[Replica, Replica]
) -> None:
    primary, secondary = replicas
    # The set delay (5 s) is only the start: after 5 fast answers the delay is their p95 (milliseconds).
    gw = start(gateway_factory, primary, secondary, {"delay_s": 5, "p95": True, "min_samples": 5})
    for _ in range(5):
        assert ask(gw)[1] == "primary/up-a"
    primary.steer = {"first_byte_delay_ms": 3000}
    started = time.monotonic()
    assert ask(gw)[1:] == ("secondary/up-b", "2")
    assert time.monotonic() - started < 2


def test_a_failing_hedge_leaves_the_primary_answer(
    gateway_factory: GatewayFactory, replicas: tuple[Replica, Replica]
) -> None:
    primary, secondary = replicas
    gw = start(gateway_factory, primary, secondary, {"delay_s": 0.2})
    primary.steer = {"first_byte_delay_ms": 600}
    secondary.steer = {"status": 500}
    assert ask(gw) == ("mock: hi", "primary/up-a", "2")
    assert secondary.hits == 1
