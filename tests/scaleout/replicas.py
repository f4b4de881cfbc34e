"""Three gateway replicas (`gatecore serve --workers 2` each) on one real Redis and one real
PostgreSQL, reached through a TcpProxy so a test can take the database away and bring it back."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai

from ..e2e.conftest import make_client
from ..e2e.gateway import MASTER_KEY, Gateway, running_gateway, write_config
from ..e2e.ledger_store import LedgerStore
from ..services.postgres import PostgresServer
from ..services.redis import RedisServer
from ..services.tcp_proxy import TcpProxy
from ..upstreams.openai_mock import MockUpstream

BUDGET_KEY = "sk-replicas-budget-5e1d"
REQUEST_USD = 5.0  # 1 prompt token + 4 output tokens at $1 each (FOUR below)
FOUR = {"mock": {"chunks": 4}}
HI: list[Any] = [{"role": "user", "content": "hi"}]
PRICE = {"input_per_1m": 1e6, "output_per_1m": 1e6}


def replica_config(upstream: MockUpstream, redis: RedisServer, store_url: str, spool: Path) -> dict[str, Any]:
    def model(name: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "deployments": [{"provider": "up", "model": "upstream-model-1", "pricing": dict(PRICE)}],
            "timeouts": {"connect": 2, "first_byte": 10, "idle": 10, "total": 30},
            **extra,
        }

    return {
        "server": {"shutdown_grace_s": 10},
        "providers": [{"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up"}],
        "models": [
            model("m"),
            model("m-rpm"),
            model("m-rpm-after"),
            model("m-par"),
            model("m-cache", cache={"enabled": True}),
        ],
        "auth": {
            "master_key": MASTER_KEY,
            "keys": [{"key": BUDGET_KEY, "name": "budget-key", "budget_usd": 30.0}],
        },
        "limits": {
            "models": {
                "m-rpm": {"rpm": 12},
                "m-rpm-after": {"rpm": 5},
                "m-par": {"max_parallel": 4},
            },
            "on_redis_error": "open",
        },
        "budgets": {"period": "daily"},
        "redis": {"url": redis.url, "timeout_s": 0.25, "retry_after_s": 0.5},
        "cache": {"enabled": False, "backend": "redis"},
        "store": {"url": store_url, "pool_size": 3, "statement_timeout_s": 10},
        "ledger": {
            "spool_dir": str(spool),
            "flush_interval_s": 0.05,
            "write_timeout_s": 0.5,
            "retry_interval_s": 0.3,
        },
    }


@dataclass
class Replicas:
    gateways: list[Gateway]
    redis: RedisServer
    postgres: PostgresServer
    store: LedgerStore
    proxy: TcpProxy
    sent: list[str]  # every request id sent with a known key, for the exactly-once ledger check

    def request_id(self, tag: str, ledgered: bool = True) -> str:
        """A new request id; `ledgered`: the request has a ledger row (a 401 has none, by design)."""
        rid = f"rep-{tag}-{uuid.uuid4().hex[:10]}"
        if ledgered:
            self.sent.append(rid)
        return rid


@contextlib.contextmanager
def three_replicas(
    upstream: MockUpstream, redis: RedisServer, postgres: PostgresServer, root: Path
) -> Iterator[Replicas]:
    url = postgres.create_database()
    store = LedgerStore.for_test(url, postgres)
    assert store.proxy is not None
    config = replica_config(upstream, redis, store.gateway_url, root / "spool")
    with contextlib.ExitStack() as stack:
        gateways = []
        for i in range(3):
            workdir = root / f"replica{i}"
            workdir.mkdir(parents=True)
            path = write_config(config, workdir / "gatecore.yaml")
            gateways.append(
                stack.enter_context(
                    running_gateway(["--config", str(path), "--workers", "2"], workdir, config=config)
                )
            )
        try:
            yield Replicas(gateways, redis, postgres, store, store.proxy, [])
        finally:
            store.close()


def status_of(gw: Gateway, key: str, model: str, rid: str, **kwargs: Any) -> int:
    """One chat call on a fresh connection (fresh connections spread over a replica's workers)."""
    with make_client(gw, key) as client:
        try:
            client.chat.completions.create(
                model=model, messages=HI, extra_headers={"x-request-id": rid}, **kwargs
            )
        except openai.APIStatusError as exc:
            return exc.status_code
    return 200


def burst(count: int, call: Callable[[int], int]) -> list[int]:
    """`call(i)` from `count` threads released together; the statuses in order."""
    statuses = [0] * count
    barrier = threading.Barrier(count)

    def one(i: int) -> None:
        barrier.wait(10)
        statuses[i] = call(i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    return statuses
