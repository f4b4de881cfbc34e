"""Stores a miss's answer once the request is over (a recorder: off the request path).

Only a complete, successful answer is stored: status 200, no error (a stream cut or broken half-way
has one), the client still there, a stream only once its terminal event went out (`[DONE]`,
Anthropic's `message_stop`), and an answer that calls tools only when `cache.cache_tool_calls`.
"""

from __future__ import annotations

import logging
import time

from gatecore.cache.backend import Backend
from gatecore.cache.entry import CachedAnswer
from gatecore.cache.semantic import SemanticCache
from gatecore.cache.stats import CacheStats
from gatecore.cache.ticket import Ticket
from gatecore.pricing.book import PriceBook
from gatecore.request import RequestContext

log = logging.getLogger("gatecore.cache")
# The last write of a stream that ended properly holds one of these.
_TERMINAL = (b"data: [DONE]", b"event: message_stop")
_JSON = "application/json"


class CacheWriter:
    """The recorder that stores answers (cache/ticket.py collected their writes)."""

    __slots__ = ("backend", "prices", "semantic", "stats", "tool_calls")

    def __init__(self, backend: Backend, stats: CacheStats, tool_calls: bool, prices: PriceBook):
        self.backend = backend
        self.prices = prices
        self.semantic: SemanticCache | None = None
        self.stats = stats
        self.tool_calls = tool_calls

    def record(self, ctx: RequestContext, finished_ns: int) -> None:
        ticket = ctx.cache
        if not isinstance(ticket, Ticket):
            return
        if ticket.state == "hit":
            self.stats.saved_usd += self.prices.saved_usd(ctx) or 0.0
            return
        if not ticket.store or not ticket.parts:
            return
        if ctx.status != 200 or ctx.error_code is not None or ctx.client_gone:
            return
        if ctx.finish_reason == "tool_calls" and not self.tool_calls:
            return
        if ctx.stream:
            tail = ticket.parts[-1][-64:]
            # Gemini's streams have no terminal event: its end is the finish reason, seen whole.
            finished = ctx.endpoint.name == "gemini" and ctx.finish_reason is not None
            if not finished and not any(marker in tail for marker in _TERMINAL):
                return
        encoder = ctx.encoder
        if encoder is not None:
            content_type = encoder.content_type
        else:
            content_type = "text/event-stream" if ctx.stream else _JSON
        usage = ctx.usage
        entry = CachedAnswer(
            ticket.namespace,
            ctx.client_model,
            ctx.stream,
            content_type,
            ticket.parts,
            usage.input_tokens if usage is not None else 0,
            usage.output_tokens if usage is not None else 0,
            ctx.finish_reason,
            time.time(),
            ticket.gaps_ms() if ctx.stream else [],
        )
        self.backend.put(ticket.key, entry, ticket.ttl_s)
        self.stats.stores += 1
        if ticket.probe is not None and self.semantic is not None:
            self.semantic.add(ticket.namespace, ticket.probe, entry, ticket.ttl_s)

    async def aclose(self) -> None:
        await self.backend.aclose()
        if self.semantic is not None:
            await self.semantic.aclose()
