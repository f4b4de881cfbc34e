"""Three replicas, one truth: three `gatecore serve --workers 2` on one real Redis and one real
PostgreSQL. A key created on one replica works on all within 1 s and a revocation is refused by all
within 1 s; rpm, concurrency and a hard budget hold exactly across the six workers under a concurrent
burst; Redis killed mid-run follows `on_redis_error` (served from local buckets, cache bypassed) and
is counted in again once back; PostgreSQL gone serves known keys from memory, answers 503 on the admin
API and spools the ledger, replayed once it returns; the ledger has every request exactly once."""

from __future__ import annotations

import collections
import os
import signal
import time
from collections.abc import Iterator

import openai
import pytest
import yaml

from ..e2e.admin_client import AdminClient
from ..e2e.conftest import make_client
from ..e2e.gateway import MASTER_KEY, Gateway
from ..services.postgres import PostgresServer
from ..services.redis import RedisServer, running_redis
from ..upstreams.openai_mock import MockUpstream
from .conftest import ready_hash, wait_hash_everywhere
from .replicas import BUDGET_KEY, FOUR, REQUEST_USD, Replicas, burst, status_of, three_replicas

PROPAGATION_S = 1.0


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture(scope="module")
def replicas(
    upstream: MockUpstream,
    redis_server: RedisServer,
    postgres: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Replicas]:
    with three_replicas(upstream, redis_server, postgres, tmp_path_factory.mktemp("replicas")) as r:
        yield r


def settle_time(r: Replicas, gw: Gateway, key: str, want: int) -> float:
    """Seconds until `gw` answers `want` for good with `key`: the start of the first run of 12 calls in
    a row on fresh connections (both workers) that all answer so. Bounded whatever the load."""
    start = time.monotonic()
    streak, began = 0, start
    while streak < 12:
        sent = time.monotonic()
        rid = r.request_id("prop", ledgered=False)  # its answer may be a 401 (no ledger row)
        got = status_of(gw, key, "m", rid)
        if got != 401:
            r.sent.append(rid)
        if got == want:
            began = sent if streak == 0 else began
            streak += 1
        else:
            streak = 0
        assert time.monotonic() - start < PROPAGATION_S + 20, f"still {got}, want {want}"
    return began - start


def test_a_key_created_on_one_replica_works_on_all_and_its_revocation_too(replicas: Replicas) -> None:
    first, second, third = replicas.gateways
    admin = AdminClient(first, MASTER_KEY)
    status, created = admin.call("POST", "/keys", {"name": "shared", "models": ["m"]})
    assert status == 201, created
    secret = created["key"]
    took = [settle_time(replicas, gw, secret, 200) for gw in (second, third)]
    assert max(took) < PROPAGATION_S, took
    status, _ = AdminClient(second, MASTER_KEY).call("DELETE", f"/keys/{created['id']}")
    assert status == 200
    took = [settle_time(replicas, gw, secret, 401) for gw in (first, third)]
    assert max(took) < PROPAGATION_S, took


def test_stored_responses_are_shared(replicas: Replicas) -> None:
    first, second, third = replicas.gateways
    with make_client(first) as client:
        created = client.responses.create(
            model="m", input="remember this", extra_headers={"x-request-id": replicas.request_id("resp")}
        )
    for gw in (second, third):
        with make_client(gw) as client:
            deadline = time.monotonic() + 5  # written after the answer, off the request path
            while True:
                try:
                    got = client.responses.retrieve(created.id)
                    break
                except openai.NotFoundError:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            assert got.output_text == created.output_text


def test_limits_and_a_hard_budget_hold_exactly_across_six_workers(replicas: Replicas) -> None:
    gws = replicas.gateways
    # rpm 12 over the three replicas: a burst of 30 lets exactly 12 through.
    statuses = burst(30, lambda i: status_of(gws[i % 3], MASTER_KEY, "m-rpm", replicas.request_id("rpm")))
    assert sorted(statuses) == [200] * 12 + [429] * 18
    # max_parallel 4: 16 slow requests at once, exactly 4 in flight anywhere.
    slow = {"mock": {"first_byte_delay_ms": 1500}}
    statuses = burst(
        16,
        lambda i: status_of(gws[i % 3], MASTER_KEY, "m-par", replicas.request_id("par"), extra_body=slow),
    )
    assert sorted(statuses) == [200] * 4 + [429] * 12
    # A $30 hard budget, $5 a request, 16 at once over the replicas: exactly 6 are served.
    costly = {"mock": {**FOUR["mock"], "first_byte_delay_ms": 500}}
    statuses = burst(
        16,
        lambda i: status_of(
            gws[i % 3], BUDGET_KEY, "m", replicas.request_id("budget"), max_tokens=4, extra_body=costly
        ),
    )
    assert statuses.count(200) * REQUEST_USD == 30.0, statuses
    assert statuses.count(429) == 10
    time.sleep(0.3)  # the settles go out after the responses
    for gw in gws:
        assert (
            status_of(gw, BUDGET_KEY, "m", replicas.request_id("budget"), max_tokens=4, extra_body=FOUR)
            == 429
        )


def cache_state(r: Replicas, gw: Gateway, text: str) -> str | None:
    with make_client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="m-cache",
            messages=[{"role": "user", "content": text}],
            temperature=0,
            extra_headers={"x-request-id": r.request_id("cache")},
        )
    return raw.headers.get("x-gatecore-cache")


def test_redis_killed_mid_run_and_brought_back(replicas: Replicas) -> None:
    gws = replicas.gateways
    assert cache_state(replicas, gws[0], "before the outage") == "miss"
    deadline = time.monotonic() + 5
    while cache_state(replicas, gws[1], "before the outage") != "hit":  # written off the request path
        assert time.monotonic() < deadline
        time.sleep(0.05)
    replicas.redis.kill()
    # on_redis_error: open: limits fall back to each worker's local bucket; requests are served.
    statuses = [status_of(gws[i % 3], MASTER_KEY, "m", replicas.request_id("redis-down")) for i in range(9)]
    assert statuses == [200] * 9
    # The cache is bypassed (answered from the upstream, not an error).
    assert cache_state(replicas, gws[2], "before the outage") != "hit"
    replicas.redis.restart()
    time.sleep(1.0)  # past redis.retry_after_s (0.5 s): each worker tries Redis again on its next request
    # Counted in Redis again, across every worker: rpm 5 (a limit untouched during the outage).
    statuses = burst(
        15, lambda i: status_of(gws[i % 3], MASTER_KEY, "m-rpm-after", replicas.request_id("redis-back"))
    )
    assert sorted(statuses) == [200] * 5 + [429] * 10
    assert cache_state(replicas, gws[0], "after the outage") == "miss"
    deadline = time.monotonic() + 5
    while cache_state(replicas, gws[2], "after the outage") != "hit":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_postgres_gone_mid_run_and_back_then_the_ledger_has_every_request_once(
    replicas: Replicas,
) -> None:
    gws = replicas.gateways
    admin = AdminClient(gws[0], MASTER_KEY)
    status, created = admin.call("POST", "/keys", {"name": "before-outage", "models": ["m"]})
    assert status == 201
    secret = created["key"]
    for gw in gws:
        settle_time(replicas, gw, secret, 200)
    replicas.proxy.cut()
    try:
        # Known keys are served from memory on every replica; the admin API answers 503.
        statuses = [status_of(gws[i % 3], secret, "m", replicas.request_id("pg-down")) for i in range(12)]
        assert statuses == [200] * 12
        for gw in gws:
            status, body = AdminClient(gw, MASTER_KEY).call("GET", "/keys")
            assert status == 503, body
            assert "gatecore@" not in str(body)
        # A config reload meanwhile (replica 0) keeps the stored keys it had loaded, and stays ready.
        before = ready_hash(gws[0].port)
        path = gws[0].stdout_path.parent / "gatecore.yaml"
        config = yaml.safe_load(path.read_text())
        config["models"].append({**config["models"][0], "name": "m-added"})
        path.write_text(yaml.safe_dump(config))
        os.kill(gws[0].proc.pid, signal.SIGHUP)
        wait_hash_everywhere(gws[0], before)
        assert [
            status_of(gws[0], secret, "m", replicas.request_id("pg-down-reloaded")) for _ in range(8)
        ] == [200] * 8
        spool = gws[0].stdout_path.parent.parent / "spool"
        deadline = time.monotonic() + 10
        while not list(spool.glob("*.jsonl")):
            assert time.monotonic() < deadline, "no ledger row was spooled while the store was down"
            time.sleep(0.1)
    finally:
        replicas.proxy.restore()
    # Converges without a restart: the admin API works again and a new key reaches every replica.
    deadline = time.monotonic() + 20
    while True:
        status, created = AdminClient(gws[1], MASTER_KEY).call(
            "POST", "/keys", {"name": "after", "models": ["m"]}
        )
        if status == 201:
            break
        assert time.monotonic() < deadline, (status, created)
        time.sleep(0.2)
    after = created["key"]
    for gw in gws:
        settle_time(replicas, gw, after, 200)
    # Every request of this module is in the ledger exactly once (the spooled ones replayed once).
    expected = set(replicas.sent)
    rows = replicas.store.wait_rows(expected, timeout=30)
    counts = collections.Counter(row["request_id"] for row in rows)
    doubled = {rid: n for rid, n in counts.items() if n > 1}
    assert not doubled, doubled
    assert expected <= set(counts)
