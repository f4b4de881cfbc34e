"""`redis.url` in its three forms: one node, Sentinel (`redis+sentinel://`) and Cluster
(`redis+cluster://`), checked at config load with every error's path, and a limit held exactly across
two workers through a real Sentinel and a real Cluster."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from gatecore.store.redis_client import key_prefix
from gatecore.store.redis_url import check_redis_url

from ..e2e.gateway import MASTER_KEY, GatewayFactory, run_cli, write_config
from ..services.redis_topologies import running_cluster, running_sentinel
from ..upstreams.openai_mock import MockUpstream
from .replicas import burst, status_of


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://127.0.0.1:6379/0", None),
        ("rediss://user:pw@cache.example:6380/2", None),
        ("unix:///run/redis.sock?db=1", None),
        ("redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster", None),
        ("redis+sentinel://:secret@s1:26379/mymaster/3?sentinel_password=x", None),
        ("redis+cluster://10.0.0.1:7000,10.0.0.2:7001", None),
        ("redis+sentinel://10.0.0.1:26379", "names the service"),
        ("redis+sentinel://10.0.0.1:26379/mymaster/db", "must be a number"),
        ("redis+cluster://10.0.0.1", "host:port"),
        ("redis+cluster://", "names no host"),
        ("memcached://10.0.0.1:11211", "must start with"),
    ],
)
def test_url_forms_are_checked(url: str, problem: str | None) -> None:
    found = check_redis_url(url)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
        assert "secret" not in found


def test_cluster_keys_share_one_slot() -> None:
    assert key_prefix("redis+cluster://h:7000", "gatecore:") == "{gatecore:}"
    assert key_prefix("redis://h:6379/0", "gatecore:") == "gatecore:"


def limited(upstream: MockUpstream, url: str) -> dict[str, Any]:
    return {
        "providers": [{"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up"}],
        "models": [{"name": "m", "deployments": [{"provider": "up", "model": "upstream-model-1"}]}],
        "auth": {"master_key": MASTER_KEY},
        "limits": {"models": {"m": {"rpm": 4}}, "on_redis_error": "closed"},
        "redis": {"url": url, "timeout_s": 1.0},
    }


def test_gatecore_check_names_the_bad_url(tmp_path: Any, upstream: MockUpstream) -> None:
    path = write_config(limited(upstream, "redis+sentinel://:hunter2@h:26379"), tmp_path / "c.yaml")
    result = run_cli(["check", "--config", str(path)])
    assert result.returncode == 1
    assert "redis.url: a redis+sentinel:// URL names the service" in result.stdout
    assert "hunter2" not in result.stdout + result.stderr


def test_a_limit_holds_through_a_real_sentinel(
    gateway_factory: GatewayFactory, upstream: MockUpstream
) -> None:
    with running_sentinel() as (master, sentinel_port):
        gw = gateway_factory(
            limited(upstream, f"redis+sentinel://127.0.0.1:{sentinel_port}/mymaster"), workers=2
        )
        statuses = burst(10, lambda i: status_of(gw, MASTER_KEY, "m", f"sentinel-{i}"))
        # Counted once, in the master the Sentinel names (fail mode closed: an unreachable Redis is a 503).
        assert sorted(statuses) == [200] * 4 + [429] * 6
        assert redis.Redis(port=master.port).keys("gatecore:*")


def test_a_limit_holds_through_a_real_cluster(
    gateway_factory: GatewayFactory, upstream: MockUpstream
) -> None:
    with running_cluster() as ports:
        url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports[:2])
        gw = gateway_factory(limited(upstream, url), workers=2)
        statuses = burst(10, lambda i: status_of(gw, MASTER_KEY, "m", f"cluster-{i}"))
        assert sorted(statuses) == [200] * 4 + [429] * 6
        keys = [str(k) for p in ports for k in redis.Redis(port=p, decode_responses=True).keys("*")]
        assert keys and all(k.startswith("{gatecore:}") for k in keys)
