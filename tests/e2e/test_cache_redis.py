"""The cache on Redis (issue 19) with a real redis-server: shared by two gateway processes, Redis's
own expiry, binary-safe entries, and Redis down or stalled mid-run: answered uncached within a bounded
wait, never a 5xx."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ..services.redis import RedisServer, running_redis
from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .conftest import make_client, new_request_id
from .gateway import Gateway, GatewayFactory, standard_config

CACHE = "x-gatecore-cache"


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


def cache_config(upstream: MockUpstream, refused: RefusedPort, redis: RedisServer) -> dict[str, Any]:
    config = standard_config(upstream.base_url, refused.base_url)
    config["redis"] = {"url": redis.url, "timeout_s": 0.3, "retry_after_s": 0.5}
    config["cache"] = {"enabled": True, "backend": "redis"}
    return config


def ask(gw: Gateway, text: str, **extra: Any) -> tuple[str, dict[str, str], Any]:
    rid = new_request_id()
    headers = {"x-request-id": rid, **extra.pop("headers", {})}
    with make_client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-test",
            messages=[{"role": "user", "content": text}],
            temperature=0,
            extra_headers=headers,
            **extra,
        )
    return rid, dict(raw.headers), raw.parse()


def test_two_gateways_share_entries(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, redis_server: RedisServer
) -> None:
    config = cache_config(upstream, refused, redis_server)
    first, second = gateway_factory(config), gateway_factory(config)
    text = f"shared {uuid.uuid4().hex}"
    # Bytes that are not ASCII (and a NUL) survive the round trip: the entry is binary msgpack.
    content = "h\u00e9llo \u0000 \u2713 \U0001f389 " + uuid.uuid4().hex
    _, head, answer = ask(first, text, extra_body={"mock": {"content": content}})
    assert head[CACHE] == "miss"
    rid, head, again = ask(second, text, extra_body={"mock": {"content": content}})
    assert head[CACHE] == "hit"
    assert again.model_dump() == answer.model_dump()
    assert again.choices[0].message.content == content
    time.sleep(0.2)
    assert not upstream.received(rid)
    # Streams too, and Redis's expiry is the entry's TTL.
    text = f"expiring {uuid.uuid4().hex}"
    _, head, _ = ask(first, text, headers={"x-gatecore-cache-ttl": "1"})
    assert head[CACHE] == "miss"
    _, head, _ = ask(second, text)
    assert head[CACHE] == "hit"
    time.sleep(1.2)
    _, head, _ = ask(second, text)
    assert head[CACHE] == "miss"


def test_redis_down_or_stalled_goes_on_uncached(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, redis_server: RedisServer
) -> None:
    gw = gateway_factory(cache_config(upstream, refused, redis_server))
    text = f"resilient {uuid.uuid4().hex}"
    ask(gw, text)
    _, head, _ = ask(gw, text)
    assert head[CACHE] == "hit"
    # Stalled: Redis accepts nothing (SIGSTOP); each lookup waits at most redis.timeout_s.
    assert redis_server.proc is not None
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        rid, head, answer = ask(gw, text)
        assert time.monotonic() - started < 2.0
        assert head[CACHE] == "miss"
        assert answer.choices[0].message.content == f"mock: {text}"
        upstream.wait_for(rid)
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    # Down: connections refused. Still answered, uncached.
    redis_server.kill()
    for _ in range(3):
        started = time.monotonic()
        rid, head, _ = ask(gw, f"down {uuid.uuid4().hex}")
        assert time.monotonic() - started < 2.0
        assert head[CACHE] == "miss"
        upstream.wait_for(rid)
    # Back: shared again once retry_after_s has passed.
    redis_server.start()
    text = f"back {uuid.uuid4().hex}"
    deadline = time.monotonic() + 10
    states: list[str] = []
    while time.monotonic() < deadline:
        states.append(ask(gw, text)[1][CACHE])
        if states[-1] == "hit":
            break
        time.sleep(0.3)
    assert states[-1] == "hit", states
    assert "Traceback" not in gw.output()


def test_streams_are_shared_too(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, redis_server: RedisServer
) -> None:
    config = cache_config(upstream, refused, redis_server)
    first, second = gateway_factory(config), gateway_factory(config)
    text = f"streamed {uuid.uuid4().hex}"
    results = []
    for gw in (first, second):
        with (
            make_client(gw) as client,
            client.chat.completions.with_streaming_response.create(
                model="gpt-test", messages=[{"role": "user", "content": text}], temperature=0, stream=True
            ) as raw,
        ):
            results.append((raw.headers[CACHE], [c.model_dump() for c in raw.parse()]))
    assert [state for state, _ in results] == ["miss", "hit"]
    assert results[0][1] == results[1][1]
