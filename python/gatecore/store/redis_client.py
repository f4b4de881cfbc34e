"""The Redis client of shared limits, budgets and the cache, from `redis.url`: one node, Sentinel or
Cluster (redis-py's own clients for each, nothing home-made).

- `redis://[user:password@]host:6379/0`, `rediss://…` (TLS), `unix:///path/redis.sock?db=0`: one node.
- `redis+sentinel://[user:password@]host:26379[,host:26379…]/<service>[/<db>]`: the master the
  Sentinels name for `<service>`, followed across failovers. The credentials are the data nodes';
  Sentinels that need their own password take `?sentinel_password=…`.
- `redis+cluster://[user:password@]host:7000[,host:7001…]`: a Redis Cluster (any of its nodes; the
  rest are discovered). The admission and settle scripts touch several keys at once, which a Cluster
  allows only in one hash slot, so the key prefix becomes a hash tag (`{gatecore:}`): every key lands
  on one shard. A Cluster then buys failover, not capacity.

Every client retries a command once on a connection error: a pooled connection left from before a
Redis restart or failover fails on its first use, and that alone must not put the limits into their
`on_redis_error` mode (each worker would count alone for `retry_after_s`).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from gatecore.store.redis_url import CLUSTER, SENTINEL, RedisUrlParts, is_cluster

RedisClient = Redis | RedisCluster


def key_prefix(url: str, prefix: str) -> str:
    """The prefix of every key gatecore writes: a hash tag on a Cluster (one slot, see above)."""
    return "{" + prefix + "}" if is_cluster(url) and "{" not in prefix else prefix


def redis_client(url: str, timeout_s: float) -> RedisClient:
    """An asyncio client for `url` (checked by `check_redis_url` at config load)."""
    common: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": Retry(NoBackoff(), 1),
        "retry_on_error": [RedisConnectionError],
    }
    if url.startswith(SENTINEL):
        parts = RedisUrlParts(url, SENTINEL)
        sentinel_kwargs: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
        if "sentinel_password" in parts.query:
            sentinel_kwargs["password"] = parts.query["sentinel_password"]
        sentinel = Sentinel(parts.hosts, sentinel_kwargs=sentinel_kwargs)
        assert parts.service is not None
        master: Redis = sentinel.master_for(
            parts.service, username=parts.username, password=parts.password, db=parts.db, **common
        )
        return master
    if url.startswith(CLUSTER):
        parts = RedisUrlParts(url, CLUSTER)
        nodes = [ClusterNode(host, port) for host, port in parts.hosts]
        return RedisCluster(
            startup_nodes=nodes,
            username=parts.username,
            password=parts.password,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),
        )
    return Redis.from_url(url, **common)
