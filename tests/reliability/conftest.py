"""The reliability suite's gateway: one model per scripted upstream fault (tests/upstreams/fault_upstream.py)
plus a model whose upstream refuses connections, all with short timeouts, and a key limited to one
request in flight so a slot an aborted exchange failed to give back shows as a 429 on the next one.

Quick by default (CI); RELIABILITY_LONG=1 runs the load tests longer (`make reliability`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..e2e.conftest import refused, upstream
from ..e2e.gateway import MASTER_KEY, Gateway, running_gateway, write_config
from ..e2e.ledger_store import LedgerStore
from ..upstreams.fault_upstream import FAULTS, FaultUpstream
from ..upstreams.openai_mock import MockUpstream, RefusedPort

__all__ = ["refused", "upstream"]

LONG = os.environ.get("RELIABILITY_LONG") == "1"
FAULT_KEY = "sk-reliability-client-4b8e1d0c7a3f9e2b"
LOAD_KEY = "sk-reliability-load-9c2e7f1a5d3b8e0c"
UPSTREAM_SECRET = "sk-reliability-upstream-7d1e9c3b5a0f2e8d"
TIMEOUTS = {"connect": 1.0, "first_byte": 1.0, "idle": 2.0, "total": 3.0}
"""Every fault model's: a trickle of one byte a second passes `idle` and is ended by `total`."""
BODY_READ_TIMEOUT_S = 2.0
MODELS = ["refused", *FAULTS]
PRICE = {"input_per_1m": 1.0, "output_per_1m": 2.0}


@dataclass
class FaultGateway:
    gateway: Gateway
    ledger: LedgerStore
    faults: FaultUpstream


def fault_config(
    faults: FaultUpstream, refused_url: str, upstream_url: str, *, breaker: bool
) -> dict[str, Any]:
    providers: list[dict[str, Any]] = [
        {"name": f"p-{name}", "kind": "openai", "base_url": faults.base_url(name), "api_key": UPSTREAM_SECRET}
        for name in FAULTS
    ]
    providers += [
        {"name": "p-refused", "kind": "openai", "base_url": refused_url, "api_key": UPSTREAM_SECRET},
        {"name": "p-ok", "kind": "openai", "base_url": upstream_url, "api_key": UPSTREAM_SECRET},
    ]
    for provider in providers:
        provider["responses"] = "translate"
    models = [
        {
            "name": name,
            "deployments": [{"provider": f"p-{name}", "model": "fault-model", "pricing": PRICE}],
            "timeouts": TIMEOUTS,
        }
        for name in MODELS
    ]
    models.append(
        {
            "name": "ok",
            "deployments": [{"provider": "p-ok", "model": "ok-model", "pricing": PRICE}],
            "timeouts": TIMEOUTS,
        }
    )
    return {
        "server": {"access_log": True, "body_read_timeout_s": BODY_READ_TIMEOUT_S},
        "providers": providers,
        "models": models,
        "routing": {"breaker": {"enabled": breaker}},
        "auth": {
            "master_key": MASTER_KEY,
            "keys": [
                {"key": FAULT_KEY, "name": "faults", "max_parallel": 1, "budget_usd": 100},
                {"key": LOAD_KEY, "name": "load", "budget_usd": 100},
            ],
        },
    }


def _started(
    tmp: Path, faults: FaultUpstream, refused: RefusedPort, upstream: MockUpstream, *, breaker: bool
) -> Iterator[FaultGateway]:
    config = fault_config(faults, refused.base_url, upstream.base_url, breaker=breaker)
    path = write_config(config, tmp / "config.yaml")
    with running_gateway(["--config", str(path)], tmp, config=config) as gw:
        yield FaultGateway(gw, LedgerStore(f"sqlite:///{tmp / 'gatecore.db'}"), faults)


@pytest.fixture(scope="package")
def faults() -> Iterator[FaultUpstream]:
    with FaultUpstream() as server:
        yield server


@pytest.fixture(scope="package")
def fault_gateway(
    faults: FaultUpstream,
    refused: RefusedPort,
    upstream: MockUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FaultGateway]:
    """Breakers off: each fault is seen as itself, never as an open breaker."""
    yield from _started(tmp_path_factory.mktemp("faults"), faults, refused, upstream, breaker=False)


@pytest.fixture(scope="package")
def breaker_gateway(
    faults: FaultUpstream,
    refused: RefusedPort,
    upstream: MockUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FaultGateway]:
    """Breakers on (the defaults): the load test, where a failing deployment's breaker opens."""
    yield from _started(tmp_path_factory.mktemp("faults-breaker"), faults, refused, upstream, breaker=True)
