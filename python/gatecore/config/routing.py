"""msgspec Structs of the routing config: retries, circuit breakers, strategies, engine load polling.

The top-level `routing` section holds the gateway-wide defaults; a model's own `retries` and
`routing` replace them for that model (whole objects, field by field over the defaults).
"""

from __future__ import annotations

import msgspec

STRATEGIES = ("weighted", "round_robin", "least_inflight", "lowest_latency", "least_loaded")


class RetriesConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a failed attempt (5xx, 429, timeout, connection error before the answer started) is retried.

    An attempt goes to the model's next deployment, then to its `fallbacks`; with `per_deployment`
    above 1 it comes back round to deployments already tried, after a backoff.
    """

    # Attempts after the first one, at most (0: the first failure is the client's answer).
    count: int = 2
    # Attempts one deployment gets within one request (1: fail over only, never the same one twice).
    per_deployment: int = 1
    # Backoff before an attempt on a deployment already tried: full jitter over
    # min(backoff_max_s, backoff_s * 2 ** retry). Moving on to another deployment does not wait.
    backoff_s: float = 0.05
    backoff_max_s: float = 2.0
    # An upstream's Retry-After (or retry-after-ms) is waited out when it is at most this long; a
    # longer one takes that deployment out of this request's attempts.
    retry_after_max_s: float = 5.0
    # No attempt starts once the request is this old (seconds since it arrived).
    budget_s: float = 60.0


class BreakerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Per-deployment circuit breaker (per worker process): opens on `failures` consecutive failures,
    or on an error rate of at least `error_rate` over `window_s` with `min_requests` requests in it."""

    enabled: bool = True
    failures: int = 5
    error_rate: float = 0.5
    window_s: float = 30.0
    min_requests: int = 20
    # Seconds an open breaker waits before letting one probe request through (half-open).
    cooldown_s: float = 10.0


class EngineMetricsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Polling of local inference engines' Prometheus `/metrics` (vLLM, SGLang, TGI)."""

    interval_s: float = 1.0
    timeout_s: float = 0.5
    # Load figures older than this are ignored (the replica counts as unknown load).
    stale_after_s: float = 5.0


class RoutingDefaults(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The top-level `routing` section."""

    retries: RetriesConfig = RetriesConfig()
    breaker: BreakerConfig = BreakerConfig()
    engine_metrics: EngineMetricsConfig = EngineMetricsConfig()


class HedgeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Hedged requests (opt-in per model): when the first attempt has no answer head after the delay,
    a second goes to another deployment; the first head wins and the other exchange is closed."""

    # Seconds to wait before hedging; with `p95`, only until `min_samples` heads were timed.
    delay_s: float = 1.0
    # Hedge after the model's observed 95th percentile of time to the answer's head instead.
    p95: bool = False
    min_samples: int = 20


class ModelRoutingConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a model picks among its deployments (`models[].routing`)."""

    strategy: str = "weighted"
    # least_loaded: when every replica's queue (waiting requests) is at least this deep, the request
    # is shed with 429 or 503 and a Retry-After derived from the queue. 0: never shed.
    max_queue: int = 0
    shed_status: int = 429
    # lowest_latency: weight of the newest sample in the time-to-first-byte moving average.
    ewma_alpha: float = 0.3
    hedge: HedgeConfig | None = None
    # Prefix affinity: requests whose prompts share their first this-many bytes (from the start of
    # `messages`, or `prompt`) go to the same deployment while it is available, for KV prefix-cache
    # reuse on local engines (rendezvous hashing, the same in every worker). 0: off.
    prefix_affinity_bytes: int = 0
