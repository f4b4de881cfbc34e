"""A request gatecore makes to itself through one of its own chains (the semantic cache's embedding),
so it is authenticated, routed, limited, metered and in the ledger like a client's.

The chain runs over an in-process stand-in for granian's connection: it hands over the body and
keeps the answer. Only whole (non-streamed) answers are taken.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gatecore.pipeline.chain import Chain
from gatecore.request import RequestContext


class _Connection:
    """What the chain's stages use of granian's RSGI protocol, for a request made in-process."""

    __slots__ = ("answer", "body", "status")

    def __init__(self, body: bytes):
        self.body = body
        self.status = 0
        self.answer = b""

    async def __call__(self) -> bytes:
        return self.body

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.answer = body

    def client_disconnect(self) -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()  # never: this client does not go away


class InternalCall:
    """POSTs JSON bodies through `chain` as the caller whose API key is given."""

    __slots__ = ("chain", "path")

    def __init__(self, chain: Chain, path: str):
        self.chain = chain
        self.path = path

    async def post(self, body: bytes, api_key: str | None, request_id: str) -> tuple[int, bytes]:
        """The status and body of the answer (an error's status and body when the chain refused)."""
        headers: dict[str, str] = {"content-length": str(len(body)), "content-type": "application/json"}
        if api_key is not None:
            headers["authorization"] = f"Bearer {api_key}"
        connection = _Connection(body)
        started = time.perf_counter_ns()
        ctx = RequestContext(self.chain.endpoint, request_id, b"", started, _Headers(headers), connection)
        error = await self.chain.run(ctx, self.path)
        if error is not None:
            return error.status, error.message.encode()
        return connection.status, connection.answer


class _Headers:
    """A header map with granian's `get`."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, str]):
        self.values = values

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)
