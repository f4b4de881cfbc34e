"""POSTing a JSON body to one upstream origin, for the providers that build their own requests."""

from __future__ import annotations

from urllib.parse import urlsplit

from gatecore.config.schema import ProviderConfig
from gatecore.request import RequestContext
from gatecore.upstream.http1 import Http1Connection
from gatecore.upstream.pool import Origin, PoolSet
from gatecore.upstream.timeouts import Timeouts


def bearer_headers(config: ProviderConfig, defaults: dict[str, str] | None = None) -> dict[str, str]:
    """`defaults`, the provider's configured headers over them, and `authorization: Bearer <api_key>`
    when a key is configured (a hosted API, or a local engine behind an authenticating proxy)."""
    headers = {**(defaults or {}), **config.headers}
    if config.api_key:
        headers["authorization"] = f"Bearer {config.api_key}"
    return headers


class JsonPost:
    """The constant part of a provider's request heads (host, auth, configured headers), built once."""

    __slots__ = ("_lines", "base_path", "pool")

    def __init__(self, base_url: str, pools: PoolSet, headers: dict[str, str]):
        origin = Origin(base_url)
        self.pool = pools.get(origin)
        self.base_path = urlsplit(base_url).path.rstrip("/")
        fixed = {
            "host": origin.host_header,
            "content-type": "application/json",
            "accept-encoding": "identity",
        }
        fixed.update(headers)
        self._lines = "".join(f"{name}: {value}\r\n" for name, value in fixed.items()).encode("latin-1")

    async def send(
        self,
        ctx: RequestContext,
        path: str,
        body: bytes,
        timeouts: Timeouts,
        extra: list[tuple[str, str]] | None = None,
    ) -> Http1Connection:
        """POST `body` to `base path + path` (path may carry a query); return once the head arrived.
        `extra` headers vary per request (a request signature)."""
        head = b"POST %s HTTP/1.1\r\n%scontent-length: %d\r\nx-request-id: %s\r\n" % (
            (self.base_path + path).encode("latin-1"),
            self._lines,
            len(body),
            ctx.request_id.encode("latin-1"),
        )
        if extra:
            head += "".join(f"{name}: {value}\r\n" for name, value in extra).encode("latin-1")
        return await self.pool.exchange(ctx, head + b"\r\n", body, timeouts)
