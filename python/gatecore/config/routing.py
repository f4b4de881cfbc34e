"""msgspec Structs of the routing config: retries, circuit breakers, strategies, engine load polling,
health checks, outlier ejection and remaining-quota awareness.

The top-level `routing` section holds the gateway-wide defaults; a model's own `retries` and
`routing` replace them for that model (whole objects, field by field over the defaults).
"""

from __future__ import annotations

import msgspec

from gatecore.config.queue import SaturationConfig

STRATEGIES = ("weighted", "round_robin", "least_inflight", "lowest_latency", "least_loaded", "lowest_cost")


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


class HealthCheckConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Active health checks of a deployment (`deployments[].health_check`, defaults in
    `routing.health_check`): a GET on an interval, in the background; a deployment that fails
    `unhealthy_after` checks in a row is skipped while a healthy one exists."""

    # Path on the base URL's origin; unset: the kind's own (`/health`; ollama `/api/version`, triton
    # `/v2/health/ready`). A path ending in `/models` must also list the deployment's model.
    path: str | None = None
    interval_s: float = 5.0
    timeout_s: float = 2.0
    unhealthy_after: int = 2
    healthy_after: int = 1


class RoutingDefaults(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The top-level `routing` section."""

    retries: RetriesConfig = RetriesConfig()
    breaker: BreakerConfig = BreakerConfig()
    engine_metrics: EngineMetricsConfig = EngineMetricsConfig()
    # The settings of health checks turned on with `deployments[].health_check: true` (or on by
    # default: deployments of the local engine kinds ollama, tgi and triton).
    health_check: HealthCheckConfig = HealthCheckConfig()


class HedgeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Hedged requests (opt-in per model): when the first attempt has no answer head after the delay,
    a second goes to another deployment; the first head wins and the other exchange is closed."""

    # Seconds to wait before hedging; with `p95`, only until `min_samples` heads were timed.
    delay_s: float = 1.0
    # Hedge after the model's observed 95th percentile of time to the answer's head instead.
    p95: bool = False
    min_samples: int = 20


class QuotaConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Remaining-quota awareness (`models[].routing.quota`): each answer's `x-ratelimit-remaining-*`
    (`anthropic-ratelimit-*-remaining`) heads are recorded per deployment, and one whose remaining
    requests or tokens fall below these thresholds is skipped until its reset time."""

    min_requests: int = 1
    min_tokens: int = 0
    # How long to skip a deployment whose answer gave no reset time for the exhausted quota.
    default_reset_s: float = 1.0


class OutlierConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Passive outlier ejection (`models[].routing.outliers`): every `interval_s`, a deployment whose
    error rate or mean time to the answer's head over the interval is far above the rest of its
    pool's is ejected (skipped) for `eject_s`, longer each time it is ejected again in a row."""

    interval_s: float = 10.0
    # Outcomes a deployment needs in the interval to be judged (and 2 judged deployments at least).
    min_requests: int = 10
    # Ejected when its error rate is at least the others' median plus this.
    error_rate_margin: float = 0.3
    # Ejected when its mean time to the answer's head is at least this many times the others' median
    # and at least `latency_min_s`.
    latency_factor: float = 3.0
    latency_min_s: float = 0.2
    eject_s: float = 30.0
    # The share of the pool that may be ejected at once (at least one deployment).
    max_ejected: float = 0.5


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
    # Prefix affinity with bounded loads: a deployment holding more than this many times its even
    # share of this worker's requests in flight is passed over for the prefix's next choice (>= 1;
    # 0: unbounded, the first choice always).
    prefix_load_factor: float = 1.25
    quota: QuotaConfig | None = None
    outliers: OutlierConfig | None = None
    # Engine-aware: replicas whose own /metrics say they are saturated are skipped while another
    # has room (their figures are polled whatever the strategy).
    saturation: SaturationConfig | None = None
