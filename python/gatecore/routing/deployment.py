"""One place a model is served, and what this worker knows of it.

Besides its circuit breaker, a deployment can be held out of routing by three things that are not
failures of a request: an active health check that failed (`healthy`), passive outlier ejection
(`ejected_until`) and an exhausted provider quota (`quota_until`). Each of them also raises the
breaker's `failing` flag, the one attribute the routing fast path tests, so a healthy pool costs no
more than before; the slow path (`available`) looks at each, and the next success clears the flag
once nothing holds the deployment any more.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gatecore.config.routing import BreakerConfig
from gatecore.routing.breaker import CLOSED, Breaker
from gatecore.routing.capabilities import Capabilities, CapabilitySource

if TYPE_CHECKING:
    from gatecore.providers.base import Provider
    from gatecore.routing.engine_load import EngineLoad
    from gatecore.routing.health_check import HealthState
    from gatecore.routing.quota import QuotaState
    from gatecore.upstream.timeouts import Timeouts


class Deployment:
    """A provider, the model name there, and this worker's view of its health (breaker, health
    checks, ejection, quota), in-flight requests, latency and engine load."""

    __slots__ = (
        "alpha",
        "breaker",
        "capabilities",
        "cost",
        "ejected_until",
        "head_count",
        "head_sum",
        "health",
        "healthy",
        "id",
        "inflight",
        "load",
        "model",
        "prefix",
        "priority",
        "provider",
        "quota",
        "quota_until",
        "served_by",
        "tags",
        "timed",
        "timeouts",
        "times_ejected",
        "tokenizer",
        "ttft_s",
        "weight",
    )

    def __init__(
        self,
        provider: Provider,
        model: str,
        weight: float,
        timeouts: Timeouts,
        *,
        priority: int = 0,
        tags: Sequence[str] = (),
        breaker: BreakerConfig | None = None,
        capabilities: CapabilitySource | None = None,
    ):
        self.provider = provider
        self.model = model  # `*`: the rest of the requested name after a wildcard model's prefix
        self.weight = weight
        self.timeouts = timeouts
        self.priority = priority
        self.tags = frozenset(tags)
        self.id = f"{provider.name}/{model}"
        self.prefix: str | None = None  # the wildcard model's prefix, set by its ModelRoute
        self.breaker = Breaker(breaker or BreakerConfig())
        self.capabilities = capabilities or CapabilitySource(model, (None, None), None)
        self.inflight = 0
        # Times to the answer's head are measured only when `timed` (strategy lowest_latency: the
        # moving average `ttft_s` with weight `alpha`; outlier ejection: the sums per interval).
        self.timed = False
        self.ttft_s: float | None = None
        self.alpha = 0.0
        self.head_sum = 0.0
        self.head_count = 0
        self.load: EngineLoad | None = None  # the engine's own figures (strategy least_loaded)
        # The engine's name/version and model revision (routing/engine_stamp.py), once read.
        self.served_by: str | None = None
        # What prompts sent here are counted with: the provider's tiktoken encoding, or the
        # deployment's own tokenizer.json (`hf:<path>`, request/tokens.py).
        self.tokenizer: str = provider.tokenizer
        # The routing cost (strategy lowest_cost; pricing/book.py `routing_cost`): None when unknown.
        self.cost: float | None = None
        self.healthy = True
        self.health: HealthState | None = None  # active health checks, when on
        self.ejected_until = 0.0
        self.times_ejected = 0
        self.quota: QuotaState | None = None  # remaining-quota tracking, when on
        self.quota_until = 0.0

    def observe_ttft(self, seconds: float) -> None:
        self.head_sum += seconds
        self.head_count += 1
        if self.alpha:
            previous = self.ttft_s
            self.ttft_s = seconds if previous is None else previous + self.alpha * (seconds - previous)

    def load_score(self) -> float:
        """Lower is less loaded (strategy least_loaded)."""
        load = self.load
        if load is None or not load.fresh():
            return 1e9 + self.inflight
        return load.score(self.inflight)

    def upstream_model(self, client_model: str) -> str | None:
        """The model name sent upstream for `client_model`; None when a wildcard cannot serve it."""
        if self.model != "*":
            return self.model
        prefix = self.prefix
        if prefix is None or not client_model.startswith(prefix) or len(client_model) <= len(prefix):
            return None
        return client_model[len(prefix) :]

    def capabilities_for(self, client_model: str) -> Capabilities:
        fixed = self.capabilities.fixed
        if fixed is not None:
            return fixed
        return self.capabilities.of(self.upstream_model(client_model) or "")

    def held(self, now: float) -> bool:
        """Held out of routing by something other than the breaker: a failed health check, an
        ejection or an exhausted quota."""
        return not self.healthy or now < self.ejected_until or now < self.quota_until

    def available(self, now: float) -> bool:
        """Whether a request may be routed here now (the slow path's full check)."""
        breaker = self.breaker
        if breaker.failing and now < breaker.reopen_at:
            return False
        return not self.held(now)

    def retry_in(self, now: float) -> float:
        """Seconds until the deployment may be tried again (0: now; inf: not before a health check
        says it is back)."""
        if not self.healthy:
            return math.inf
        return max(self.breaker.retry_in(now), self.ejected_until - now, self.quota_until - now, 0.0)

    def out_of_service(self, now: float) -> bool:
        """Open circuit, failed health check or ejection: not to be waited for by a retry (a
        Retry-After or an exhausted quota is a wait, within the retry policy's cap)."""
        return (
            (self.breaker.state is not CLOSED and self.breaker.retry_in(now) > 0)
            or not self.healthy
            or now < self.ejected_until
        )

    def hold(self) -> None:
        """Something besides the breaker now holds the deployment: send the fast path to the slow
        one, which checks each hold."""
        self.breaker.failing = True

    def succeeded(self) -> None:
        """A success while the breaker's `failing` flag was up: close the breaker, and keep the flag
        up while another hold still applies."""
        self.breaker.succeeded()
        if not self.healthy or self.ejected_until or self.quota_until:
            now = time.monotonic()
            if now >= self.ejected_until:
                self.ejected_until = 0.0
            if now >= self.quota_until:
                self.quota_until = 0.0
            if self.held(now):
                self.breaker.failing = True
