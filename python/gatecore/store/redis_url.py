"""`redis.url` forms (one node, Sentinel, Cluster): parsing and checking, without importing redis-py
(the config is checked in processes that never talk to Redis). The client is built in redis_client.py.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote

SENTINEL = "redis+sentinel://"
CLUSTER = "redis+cluster://"
SCHEMES = ("redis://", "rediss://", "unix://", SENTINEL, CLUSTER)


class RedisUrlError(ValueError):
    """`redis.url` cannot be used (the message never repeats the URL: it may hold a password)."""


class RedisUrlParts:
    """The hosts, credentials, service and database of a Sentinel or Cluster URL."""

    __slots__ = ("db", "hosts", "password", "query", "service", "username")

    def __init__(self, url: str, scheme: str):
        rest, _, query = url[len(scheme) :].partition("?")
        self.query = {k: v[-1] for k, v in parse_qs(query).items()}
        location, _, path = rest.partition("/")
        credentials, _, netloc = location.rpartition("@")
        user, _, password = credentials.partition(":")
        self.username = unquote(user) or None
        self.password = unquote(password) or None
        self.hosts = [_host_port(item) for item in netloc.split(",") if item]
        if not self.hosts:
            raise RedisUrlError("names no host")
        segments = [s for s in path.split("/") if s]
        self.service = segments[0] if segments else None
        self.db = 0
        if len(segments) > 1:
            if not segments[1].isdigit():
                raise RedisUrlError("the database after the service name must be a number")
            self.db = int(segments[1])


def _host_port(item: str) -> tuple[str, int]:
    host, _, port = item.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RedisUrlError("each host must be host:port")
    return host.strip("[]"), int(port)


def check_redis_url(url: str) -> str | None:
    """Why `url` cannot be used, or None (for config validation; never quotes the URL)."""
    if not url.startswith(SCHEMES):
        return "must start with " + ", ".join(SCHEMES)
    try:
        if url.startswith(SENTINEL):
            if RedisUrlParts(url, SENTINEL).service is None:
                return "a redis+sentinel:// URL names the service after the hosts: …/mymaster"
        elif url.startswith(CLUSTER):
            RedisUrlParts(url, CLUSTER)
    except RedisUrlError as exc:
        return str(exc)
    return None


def is_cluster(url: str) -> bool:
    return url.startswith(CLUSTER)
