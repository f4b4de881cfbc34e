"""Limits shared through a real Redis: two gateway processes hold one limit; Redis killed mid-test
follows each limit's configured mode (a local fallback bucket, or 503) and is used again once back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from ..services.redis import RedisServer, running_redis
from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .conftest import make_client
from .gateway import Gateway, GatewayFactory, run_cli, standard_config, write_config
from .test_budgets import BUDGET_KEY, budget_config, spend
from .test_limits import RPM_KEY, TPM_KEY, chat, error_body, limited_config


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


def redis_config(
    upstream: MockUpstream, refused: RefusedPort, redis: RedisServer, **limits: Any
) -> dict[str, Any]:
    return limited_config(
        upstream,
        refused,
        redis={"url": redis.url, "timeout_s": 0.5, "retry_after_s": 0.5},
        limits={"models": {"gpt-other": {"rpm": 4}}, **limits},
    )


def status_of(client: openai.OpenAI, model: str = "gpt-test") -> int:
    try:
        return int(chat(client, model).status_code)
    except openai.APIStatusError as exc:
        return exc.status_code


def test_two_gateways_share_one_limit(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, redis_server: RedisServer
) -> None:
    config = redis_config(upstream, refused, redis_server)
    first, second = gateway_factory(config), gateway_factory(config)
    with make_client(first, RPM_KEY) as a, make_client(second, RPM_KEY) as b:
        statuses = [status_of(client) for client in (a, b, a, b, a, b)]
        # rpm 3 for the key across both: not 3 per process.
        assert statuses == [200, 200, 200, 429, 429, 429]
        raw = chat(make_client(second), "gpt-other")
        assert raw.headers["x-ratelimit-remaining-requests"] == "3"
        exc_headers = None
        try:
            chat(b)
        except openai.RateLimitError as exc:
            exc_headers = exc.response.headers
            assert "key 'rpm-key'" in error_body(exc)["message"]
        assert exc_headers is not None and 1 <= int(exc_headers["retry-after"]) <= 20
    # Tokens are corrected in Redis too: 700 real tokens on a 101-token estimate leave no room for 451.
    with make_client(first, TPM_KEY) as a, make_client(second, TPM_KEY) as b:
        assert chat(a, max_tokens=100, extra_body={"mock": {"chunks": 700}}).status_code == 200
        time.sleep(0.3)  # the settle goes out after the response
        with pytest.raises(openai.RateLimitError):
            chat(b, max_tokens=450)
        assert chat(b, max_tokens=200).status_code == 200


def _wait_for(gw: Gateway, text: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in gw.output():
        assert time.monotonic() < deadline, f"{text!r} not logged; stderr:\n{gw.stderr()[-2000:]}"
        time.sleep(0.05)


def test_redis_down_fail_open_uses_a_local_bucket(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, redis_server: RedisServer
) -> None:
    gw = gateway_factory(redis_config(upstream, refused, redis_server))
    with make_client(gw, RPM_KEY) as client, make_client(gw) as master:
        assert status_of(client) == 200
        assert status_of(client) == 200
        redis_server.kill()
        # Served on, and still limited: the local fallback bucket holds 3 per minute on its own.
        statuses = [status_of(client) for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        _wait_for(gw, "redis is unreachable")
        assert gw.output().count("redis is unreachable") == 1  # logged once, not per request
        assert status_of(master, "gpt-other") == 200
        redis_server.start()
        time.sleep(0.6)  # retry_after_s
        # Back on Redis (restarted empty: nothing persisted), not on the spent local bucket.
        assert [status_of(client) for _ in range(4)] == [200, 200, 200, 429]
        _wait_for(gw, "redis is reachable again")


def test_redis_down_fail_closed_answers_503(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, redis_server: RedisServer
) -> None:
    config = redis_config(upstream, refused, redis_server, on_redis_error="closed")
    config["limits"]["models"]["gpt-default-key"] = {"rpm": 100, "on_redis_error": "open"}
    gw = gateway_factory(config)
    with make_client(gw, RPM_KEY) as client, make_client(gw) as master:
        assert status_of(client) == 200
        redis_server.kill()
        with pytest.raises(openai.APIStatusError) as info:
            chat(client)
        assert info.value.status_code == 503
        assert error_body(info.value)["code"] == "limits_unavailable"
        assert str(redis_server.port) not in error_body(info.value)["message"]
        # A limit configured fail-open serves on (the master key has no limits of its own).
        assert status_of(master, "gpt-default-key") == 200
        # Requests no limit applies to are not affected.
        assert status_of(master) == 200
        redis_server.start()
        time.sleep(0.6)
        assert status_of(client) == 200


def test_limits_config_errors(tmp_path: Path, upstream: MockUpstream, refused: RefusedPort) -> None:
    config = standard_config(upstream.base_url, refused.base_url)
    config["redis"] = {"url": "http://nope", "timeout_s": 0}
    config["limits"] = {"on_redis_error": "maybe", "models": {"nope": {"rpm": 0}}}
    config["budgets"] = {"timezone": "Mars/Olympus", "period": "hourly"}
    path = write_config(config, tmp_path / "gatecore.yaml")
    result = run_cli(["check", "--config", str(path)])
    assert result.returncode != 0
    for line in (
        "redis.url: must start with redis://",
        "redis.timeout_s: must be greater than 0",
        "limits.on_redis_error: must be 'open' or 'closed'",
        "limits.models.nope.rpm: must be at least 1",
        "limits.models.nope: unknown model 'nope'",
        "budgets.timezone: unknown time zone 'Mars/Olympus'",
        "budgets.period: must be one of",
    ):
        assert line in result.stdout + result.stderr, result.stdout + result.stderr


def test_two_gateways_share_one_budget(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, redis_server: RedisServer
) -> None:
    config = budget_config(upstream, refused, 15.0, period="daily")
    config["redis"] = {"url": redis_server.url}
    first, second = gateway_factory(config), gateway_factory(config)
    with make_client(first, BUDGET_KEY) as a, make_client(second, BUDGET_KEY) as b:
        statuses = []
        for client in (a, b, a, b):
            statuses.append(spend(client))
            time.sleep(0.2)  # the settle goes out after the response
        # $5 a request against $15 for the key across both processes: three fit, the fourth not.
        assert statuses == [200, 200, 200, 429]


def test_a_concurrent_burst_holds_the_limit_and_scripts_reload(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, redis_server: RedisServer
) -> None:
    """Admissions of one loop tick share a pipeline: a burst of 12 at once on an rpm 4 model still
    lets exactly 4 through. After SCRIPT FLUSH (a Redis restart or failover loses scripts) the
    scripts are loaded again and the counts already in Redis still hold."""
    import threading

    import redis

    gw = gateway_factory(redis_config(upstream, refused, redis_server))
    statuses: list[int] = []
    barrier = threading.Barrier(12)

    def one() -> None:
        with make_client(gw) as client:
            barrier.wait()
            statuses.append(status_of(client, "gpt-other"))

    threads = [threading.Thread(target=one) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(statuses) == [200] * 4 + [429] * 8
    with make_client(gw, RPM_KEY) as client:
        assert status_of(client) == 200
        redis.Redis(port=redis_server.port).script_flush()
        assert [status_of(client) for _ in range(3)] == [200, 200, 429]  # rpm 3, one used before
