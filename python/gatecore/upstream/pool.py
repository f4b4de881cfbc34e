"""Keep-alive connection pools, one per upstream origin."""

from __future__ import annotations

import asyncio
import ssl
import time
from urllib.parse import urlsplit

from gatecore.errors import UpstreamTimeout, UpstreamUnreachable
from gatecore.upstream.deadlines import DeadlineSweeper
from gatecore.upstream.exchange import ExchangeHandle
from gatecore.upstream.http1 import Http1Connection, StaleConnection
from gatecore.upstream.timeouts import Timeouts


class Origin:
    """Scheme, host and port of an upstream, with the `Host` header value requests carry."""

    __slots__ = ("host", "host_header", "port", "tls")

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.tls else 80)
        default_port = (self.tls and self.port == 443) or (not self.tls and self.port == 80)
        name = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = name if default_port else f"{name}:{self.port}"


class ConnectionPool:
    """Idle keep-alive connections to one origin, reused most-recently-used first."""

    __slots__ = ("_idle", "_ssl", "_sweeper", "max_idle", "origin")

    def __init__(
        self,
        origin: Origin,
        sweeper: DeadlineSweeper,
        max_idle: int = 512,
        ssl_context: ssl.SSLContext | None = None,
    ):
        """`ssl_context`: how an https origin is verified (default: the system's CAs)."""
        self.origin = origin
        self._sweeper = sweeper
        self.max_idle = max_idle
        self._idle: list[Http1Connection] = []
        self._ssl: ssl.SSLContext | None = None
        if origin.tls:
            self._ssl = ssl_context or ssl.create_default_context()

    async def exchange(
        self, ctx: ExchangeHandle, head: bytes, body: bytes, timeouts: Timeouts
    ) -> Http1Connection:
        """Send one request and return the connection once the answer's head has arrived.

        A reused connection that the upstream closed while idle is detected and the request resent
        once on a new connection; nothing had reached the upstream's application then.
        """
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn.closed:
                continue
            conn.reused = True
            ctx.upstream = conn
            if not ctx.upstream_sent_ns:
                ctx.upstream_sent_ns = time.perf_counter_ns()
            conn.send(head, body, timeouts)
            try:
                await conn.read_head()
                return conn
            except StaleConnection:
                continue
        conn = await self._connect(timeouts.connect)
        if ctx.client_gone:
            conn.abort()
            raise UpstreamUnreachable("The client went away before the upstream was called.")
        ctx.upstream = conn
        if not ctx.upstream_sent_ns:
            ctx.upstream_sent_ns = time.perf_counter_ns()
        conn.send(head, body, timeouts)
        await conn.read_head()
        return conn

    def _release(self, conn: Http1Connection) -> None:
        if len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.abort()

    async def _connect(self, timeout: float) -> Http1Connection:
        loop = asyncio.get_running_loop()
        conn = Http1Connection(loop, self._release, self._sweeper)
        origin = self.origin
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(
                    lambda: conn,
                    origin.host,
                    origin.port,
                    ssl=self._ssl,
                    server_hostname=origin.host if self._ssl else None,
                )
        except TimeoutError:
            raise UpstreamTimeout(f"The upstream timed out (connect timeout, {timeout:g} s).") from None
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror or exc.__class__.__name__
            raise UpstreamUnreachable(f"Cannot connect to the upstream: {reason}.") from None
        return conn

    def close(self) -> None:
        for conn in self._idle:
            conn.abort()
        self._idle.clear()


class PoolSet:
    """Every origin's pool, shared by all providers of a worker process. `pool_class` is
    ConnectionPool, or a subclass that wraps each exchange (telemetry/traced_pool.py when tracing is
    on), so untraced requests never pay for a test of whether they are traced."""

    __slots__ = ("_pool_class", "_pools", "sweeper")

    def __init__(self, sweeper: DeadlineSweeper, pool_class: type[ConnectionPool] = ConnectionPool) -> None:
        self.sweeper = sweeper
        self._pool_class = pool_class
        self._pools: dict[tuple[bool, str, int], ConnectionPool] = {}

    @property
    def pool_class(self) -> type[ConnectionPool]:
        """The class of this set's pools (a reloaded worker takes the set over only if it matches)."""
        return self._pool_class

    def get(self, origin: Origin) -> ConnectionPool:
        key = (origin.tls, origin.host, origin.port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = self._pool_class(origin, self.sweeper)
        return pool

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
