"""The handle a caller gives the pool for one exchange: the pool knows no request context.

An inference request's context is one (it has these attributes); the background exchanges (health
checks, engines' /metrics polls, the trace exporter) use a `StandaloneExchange`.
"""

from __future__ import annotations

from typing import Protocol


class Abortable(Protocol):
    """A connection in flight, which the caller may abort at once."""

    def abort(self) -> None: ...


class ExchangeHandle(Protocol):
    """Where the pool registers the connection in flight (so that a gone client can abort it), when
    the first attempt's request was written, and whether the caller went away meanwhile."""

    upstream: Abortable | None
    upstream_sent_ns: int
    client_gone: bool


class StandaloneExchange:
    """The handle of an exchange no client waits for."""

    __slots__ = ("client_gone", "upstream", "upstream_sent_ns")

    def __init__(self) -> None:
        self.upstream: Abortable | None = None
        self.upstream_sent_ns = 0
        self.client_gone = False
