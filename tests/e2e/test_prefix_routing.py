"""Prefix-aware routing on the engine emulator (tests/upstreams/engine_emulator.py), whose replicas
answer a prompt prefix they have seen faster (their KV prefix cache): with `prefix_affinity_bytes`
each conversation stays on one replica, so its later turns hit that replica's cache; round robin
spreads them, and each replica sees each conversation's prefix once before it hits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ..upstreams.engine_emulator import EngineEmulator
from .conftest import make_client
from .gateway import GatewayFactory

CONVERSATIONS = 7  # odd: round robin moves each conversation to the other replica every turn
TURNS = 4


@pytest.fixture
def engines() -> Iterator[list[EngineEmulator]]:
    with (
        EngineEmulator(slots=8, ttft_s=0.01, tpot_s=0.001) as a,
        EngineEmulator(slots=8, ttft_s=0.01, tpot_s=0.001) as b,
    ):
        yield [a, b]


def model(name: str, routing: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "routing": routing,
        "deployments": [{"provider": "e0", "model": "m"}, {"provider": "e1", "model": "m"}],
    }


def hits(
    gateway_factory: GatewayFactory, engines: list[EngineEmulator], name: str, routing: dict[str, Any]
) -> int:
    """Prefix-cache hits over every replica for CONVERSATIONS x TURNS chat turns to a model."""
    config = {
        "providers": [
            {"name": f"e{i}", "kind": "openai", "base_url": e.base_url, "api_key": "none"}
            for i, e in enumerate(engines)
        ],
        "models": [model(name, routing)],
        "auth": {"master_key": "sk-master-prefix-e2e"},
    }
    gw = gateway_factory(config)
    before = sum(e.prefix_hits for e in engines)
    with make_client(gw, "sk-master-prefix-e2e") as client:
        for turn in range(TURNS):
            for conversation in range(CONVERSATIONS):
                # A long system prompt per conversation (its first 256 bytes are the engine's prefix).
                system = f"You are assistant number {conversation} of {name}. " + "Be brief and exact. " * 20
                messages: list[Any] = [{"role": "system", "content": system}]
                messages.extend(
                    {"role": "user", "content": f"question {earlier}"} for earlier in range(turn + 1)
                )
                client.chat.completions.create(model=name, messages=messages, max_tokens=2)
    return sum(e.prefix_hits for e in engines) - before


def test_prefix_affinity_hits_the_engines_prefix_cache_more_than_round_robin(
    gateway_factory: GatewayFactory, engines: list[EngineEmulator]
) -> None:
    affine = hits(gateway_factory, engines, "affine", {"prefix_affinity_bytes": 256})
    spread = hits(gateway_factory, engines, "spread", {"strategy": "round_robin"})
    # Affinity: every turn after a conversation's first hits (its replica saw the prefix).
    assert affine == CONVERSATIONS * (TURNS - 1)
    # Round robin: a conversation's turns alternate over both replicas, each missing it once.
    assert spread == CONVERSATIONS * (TURNS - 2)
    assert sum(e.served for e in engines) == 2 * CONVERSATIONS * TURNS
