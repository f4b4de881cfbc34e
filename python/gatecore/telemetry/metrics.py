"""Per-worker metrics: each finished request folded into counters and histogram buckets.

`record` runs on the request's task after the answer went out; it only adds numbers (about 1.2 µs
in the server), so the metrics cost no I/O on the request path. What every request adds (its status
class and cost, its six histograms, the stage histogram) is counted in Rust (`RequestMetrics`) in
one call; the rare series (errors by type, rejections) in a dict keyed by (metric name, rendered
label text). Label texts are built once per (route, deployment, endpoint), all compiled from the
config, and cached. Labels are configured names only (route names, `provider/model` deployments,
endpoint kinds, error codes): never a key, a user or a client's raw model string, so the number of
series stays bounded.

Names follow the OpenTelemetry GenAI semantic conventions where one exists (`gen_ai_*`, attributes
as labels with dots turned into underscores); the rest are `gatecore_*`.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gatecore._core import RequestMetrics
from gatecore.request import Endpoint, RequestContext
from gatecore.telemetry.exemplars import Exemplars, SampledTrace
from gatecore.telemetry.labels import escape, label_text
from gatecore.telemetry.process_stats import ProcessStats

if TYPE_CHECKING:
    from gatecore.request.views import DeploymentView, RouteView
    from gatecore.telemetry.deployment_state import DeploymentStates
    from gatecore.telemetry.worker_files import WorkerFiles

# Bucket bounds: the GenAI conventions' advised boundaries where they give some.
TOKEN_BOUNDS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BOUNDS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BOUNDS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BOUNDS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
OVERHEAD_BOUNDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# Stages take microseconds; upstream_connect, a TCP (and TLS) handshake when no pooled connection is free.
QUEUE_WAIT_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
CACHE_LOOKUP_BOUNDS = (1e-05, 5e-05, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5)
STAGE_BOUNDS = (5e-06, 1e-05, 2.5e-05, 5e-05, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.05, 0.25, 1.0)
# The same in ns: durations are observed in ns, as the clock gives them (shown in seconds).
_STAGE_BOUNDS_NS = tuple(round(bound * 1e9) for bound in STAGE_BOUNDS)
_OVERHEAD_BOUNDS_NS = tuple(round(bound * 1e9) for bound in OVERHEAD_BOUNDS)
_DURATION_BOUNDS_NS = tuple(round(bound * 1e9) for bound in DURATION_BOUNDS)
_TTFT_BOUNDS_NS = tuple(round(bound * 1e9) for bound in TTFT_BOUNDS)
# The stage histogram's parts after the pipeline's own stages (see MetricsRecorder.record).
CONNECT_STAGE = "upstream_connect"
RELAY_STAGE = "relay"

# name → (type, help, bucket bounds for histograms)
FAMILIES: dict[str, tuple[str, str, tuple[float, ...]]] = {
    "gatecore_requests_total": (
        "counter",
        "Inference requests by model, deployment, endpoint and status class.",
        (),
    ),
    "gatecore_cost_usd_total": ("counter", "Priced cost of inference requests in USD.", ()),
    "gatecore_rejections_total": ("counter", "Requests refused by gatecore's rate limits and budgets.", ()),
    "gatecore_upstream_errors_total": ("counter", "Requests that failed at the upstream, by error type.", ()),
    "gatecore_guardrail_actions_total": (
        "counter",
        "What guardrails did: entities and checks found, by guard, type and action.",
        (),
    ),
    "gatecore_requests_in_flight": ("gauge", "Inference requests being served now.", ()),
    "gatecore_deployment_state": (
        "gauge",
        "Workers that see the deployment's circuit breaker in this state (closed, open, half_open, held).",
        (),
    ),
    "gatecore_overhead_seconds": (
        "histogram",
        "Time gatecore spent on a request outside the upstream wait.",
        OVERHEAD_BOUNDS,
    ),
    "gatecore_stage_duration_seconds": (
        "histogram",
        "gatecore's time per pipeline stage (auth, decode, route, limits, relay) and to connect upstream.",
        STAGE_BOUNDS,
    ),
    "gen_ai_client_token_usage": ("histogram", "Tokens used per request, by token type.", TOKEN_BOUNDS),
    "gen_ai_client_operation_duration_seconds": (
        "histogram",
        "Total duration of an inference request as gatecore served it.",
        DURATION_BOUNDS,
    ),
    "gen_ai_server_time_to_first_token_seconds": (
        "histogram",
        "Time from a streamed request's arrival to its first event to the client.",
        TTFT_BOUNDS,
    ),
    "gen_ai_server_time_per_output_token_seconds": (
        "histogram",
        "Time per output token after the first, of streamed requests.",
        TPOT_BOUNDS,
    ),
    # The response cache (cache/stats.py fills them through `MetricsRecorder.extra`).
    "gatecore_cache_hits_total": ("counter", "Requests answered from the response cache, by backend.", ()),
    "gatecore_cache_semantic_hits_total": (
        "counter",
        "Of the cache hits, those found by the semantic lookup.",
        (),
    ),
    "gatecore_cache_misses_total": ("counter", "Cache lookups that found nothing, by backend.", ()),
    "gatecore_cache_bypasses_total": (
        "counter",
        "Cached-model requests not looked up (not deterministic, no-cache).",
        (),
    ),
    "gatecore_cache_stores_total": ("counter", "Answers written to the response cache, by backend.", ()),
    "gatecore_cache_evictions_total": (
        "counter",
        "Entries the in-process cache dropped to stay in its bound.",
        (),
    ),
    "gatecore_cache_errors_total": (
        "counter",
        "Cache lookups or stores the backend failed (served uncached).",
        (),
    ),
    "gatecore_cache_saved_usd_total": (
        "counter",
        "What the cache hits would have cost upstream, in USD.",
        (),
    ),
    "gatecore_cache_bytes": ("gauge", "Bytes the in-process cache holds, by backend (all workers).", ()),
    "gatecore_cache_lookup_seconds": ("histogram", "Cache lookup latency, by backend.", CACHE_LOOKUP_BOUNDS),
    # GPU-pool fair queuing (routing/pool_gate.py fills them through `MetricsRecorder.extra`).
    "gatecore_queue_length": ("gauge", "Requests waiting in a model's fair queue, by tenant and class.", ()),
    "gatecore_queue_wait_seconds": (
        "histogram",
        "Time requests waited in a model's fair queue (0 for those let through at once).",
        QUEUE_WAIT_BOUNDS,
    ),
    "gatecore_queue_rejections_total": (
        "counter",
        "Requests the fair queue refused (queue full, or waited past the class's max_wait_s).",
        (),
    ),
    # Published prompts (prompts/): per prompt and version, the rare-series way (a dict per series).
    "gatecore_prompt_requests_total": (
        "counter",
        "Published-prompt calls by prompt, version and status class.",
        (),
    ),
    "gatecore_prompt_tokens_total": ("counter", "Tokens of published-prompt calls, by token type.", ()),
    "gatecore_prompt_cost_usd_total": ("counter", "Priced cost of published-prompt calls in USD.", ()),
    "gatecore_prompt_duration_seconds": (
        "histogram",
        "Duration of published-prompt calls, by prompt and version.",
        DURATION_BOUNDS,
    ),
    "gatecore_prompt_time_to_first_token_seconds": (
        "histogram",
        "Time to the first event of streamed published-prompt calls.",
        TTFT_BOUNDS,
    ),
}
_BOUNDS = {name: family[2] for name, family in FAMILIES.items() if family[0] == "histogram"}
OVERHEAD = "gatecore_overhead_seconds"
DURATION = "gen_ai_client_operation_duration_seconds"
TTFT = "gen_ai_server_time_to_first_token_seconds"
TPOT = "gen_ai_server_time_per_output_token_seconds"
TOKENS = "gen_ai_client_token_usage"
_OPERATIONS = {
    "chat": "chat",
    "messages": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}
# RequestMetrics' status classes, in its order (a status outside 1xx-5xx counts as 5xx).
_STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
_REJECTIONS = {"rate_limit_exceeded": "rate_limit", "budget_exceeded": "budget"}

Series = tuple[str, str]  # (metric name, label text without braces)
# What another part of the worker adds to the snapshot: counter/gauge rows `[name, labels, value]`
# and histogram rows `[name, labels, buckets]` (the response cache's figures).
ExtraSeries = Callable[[], tuple[list[list[Any]], list[list[Any]]]]


def joined_series(sources: list[ExtraSeries]) -> ExtraSeries | None:
    """One `extra` reading every source in turn (None: no source)."""
    if not sources:
        return None
    if len(sources) == 1:
        return sources[0]

    def joined() -> tuple[list[list[Any]], list[list[Any]]]:
        counters: list[list[Any]] = []
        histograms: list[list[Any]] = []
        for source in sources:
            more_counters, more_histograms = source()
            counters.extend(more_counters)
            histograms.extend(more_histograms)
        return counters, histograms

    return joined


class _Labels:
    """The label texts of one (model, deployment, endpoint), built once, and its index in the
    recorder's `RequestMetrics`."""

    __slots__ = ("base", "by_model", "by_status", "duration", "index", "input", "model", "output")

    def __init__(self, model: str, deployment: str, provider: str, endpoint: str, index: int):
        self.model = model
        self.index = index
        self.base = label_text(model=model, deployment=deployment, endpoint=endpoint)
        self.by_model = label_text(model=model)
        # Per status class, in RequestMetrics' order.
        self.by_status = [f'{self.base},status_class="{name}"' for name in _STATUS_CLASSES]
        genai = label_text(
            gen_ai_operation_name=_OPERATIONS.get(endpoint, endpoint),
            gen_ai_provider_name=provider,
            gen_ai_request_model=model,
        )
        self.duration = genai
        self.input = genai + ',gen_ai_token_type="input"'
        self.output = genai + ',gen_ai_token_type="output"'

    def with_error(self, code: str) -> str:
        """The duration series of a request that failed with `code` (its histogram and exemplars)."""
        return f'{self.duration},error_type="{escape(code)}"'


def _prompt_series(name: str, version: int) -> tuple[Series, ...]:
    """The counter keys of one prompt version: cost (its labels are every family's), requests by
    status class 1xx-5xx (indexes 1-5), input and output tokens (6, 7)."""
    labels = f'prompt="{escape(name)}",version="{version}"'
    return (
        ("gatecore_prompt_cost_usd_total", labels),
        *(
            ("gatecore_prompt_requests_total", f'{labels},status_class="{status_class}"')
            for status_class in _STATUS_CLASSES
        ),
        *(
            ("gatecore_prompt_tokens_total", f'{labels},gen_ai_token_type="{kind}"')
            for kind in ("input", "output")
        ),
    )


class MetricsRecorder:
    """A Recorder (pipeline/recording.py) that aggregates finished requests into this worker's series.

    With `shared` (several workers), each change schedules a write of this worker's snapshot for the
    others' scrapes.
    """

    __slots__ = (
        "_label_sets",
        "_labels",
        "_metrics",
        "_prompt_series",
        "_series",
        "_stage_series",
        "counters",
        "deployments",
        "exemplars",
        "extra",
        "histograms",
        "in_flight",
        "process",
        "shared",
    )

    def __init__(
        self,
        in_flight: Callable[[], int],
        shared: WorkerFiles | None = None,
        stage_names: tuple[str, ...] = (),
        deployments: DeploymentStates | None = None,
    ):
        # The rare series (errors by type, rejections): counters, and per-bucket counts (one per
        # bound, then +Inf) then the sum of observed values.
        self.counters: dict[Series, float] = {}
        self.histograms: dict[Series, list[float]] = {}
        self.extra: ExtraSeries | None = None  # another part's figures, read at snapshot time
        # What every request adds, per label set: its status class and cost, its six histograms
        # (each named by `_series` at its index), and the stage histogram, per stage in
        # `stage_names`' order (auth, decode, the pipeline's stages), then upstream_connect and relay.
        self._metrics = RequestMetrics(
            [
                [float(b) for b in bounds]
                for bounds in (
                    _OVERHEAD_BOUNDS_NS,
                    _DURATION_BOUNDS_NS,
                    TOKEN_BOUNDS,
                    TOKEN_BOUNDS,
                    _TTFT_BOUNDS_NS,
                    TPOT_BOUNDS,
                )
            ],
            [1e9, 1e9, 1.0, 1.0, 1e9, 1.0],  # durations are observed in ns, shown in seconds
            len(stage_names),
            list(_STAGE_BOUNDS_NS),
        )
        self._series: list[Series] = []
        self._label_sets: list[_Labels] = []
        self.in_flight = in_flight
        self.shared = shared
        self.deployments = deployments
        self.process = ProcessStats()  # built in the worker, after granian started it
        self.exemplars = Exemplars()
        # By the route, deployment and endpoint objects themselves (hashed by identity).
        self._labels: dict[tuple[RouteView | None, DeploymentView | None, Endpoint], _Labels] = {}
        # Per (prompt, version): its series' keys, built once (_prompt_series below).
        self._prompt_series: dict[tuple[str, int], tuple[Series, ...]] = {}
        self._stage_series = [label_text(stage=name) for name in (*stage_names, CONNECT_STAGE, RELAY_STAGE)]

    def record(self, ctx: RequestContext, finished_ns: int) -> None:
        route, deployment, endpoint = ctx.route, ctx.deployment, ctx.endpoint
        labels = self._labels.get((route, deployment, endpoint))
        if labels is None:
            labels = self._labels[(route, deployment, endpoint)] = self._label_set(
                route, deployment, endpoint
            )
        status, usage, code = ctx.status, ctx.usage, ctx.error_code
        # Tokens of answered requests; TTFT and time per output token of streamed ones.
        if usage is not None and status < 400:
            input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
            first_byte = ctx.first_byte_ns if ctx.stream else 0
        else:
            input_tokens = output_tokens = -1
            first_byte = 0
        # With the stages the request got through. Once through them all: `relay`, the rest of
        # gatecore's overhead (attempts' bookkeeping, decoding and encoding the answer, writing it),
        # so the stages and relay add up to the request's overhead; and `upstream_connect`, from the
        # end of the stages to the request written to an upstream connection (building the
        # provider's request, taking a pooled connection or opening one), which is counted in the
        # upstream's time, not overhead.
        self._metrics.observe(
            labels.index,
            status,
            ctx.started,
            finished_ns,
            ctx.upstream_ns,
            first_byte,
            input_tokens,
            output_tokens,
            ctx.cost_usd or 0.0,  # None: not priced (no ledger)
            code is None,  # a failed request's duration is labelled with its error type below
            ctx.stage_ends,
            ctx.upstream_sent_ns,
        )
        if code is not None:
            self._error(labels, code, finished_ns - ctx.started, ctx)
        guard = ctx.guard
        if guard is not None and guard.counts:
            self._guardrails(labels, guard.counts)
        if ctx.prompt is not None:
            self._prompt(ctx, finished_ns)
        trace = ctx.trace
        if trace is not None and trace.sampled:  # tracing on: this request's trace on its buckets
            self._exemplars(ctx, labels, trace, finished_ns, first_byte)
        if self.shared is not None:
            self.shared.changed(self)

    def _exemplars(
        self, ctx: RequestContext, labels: _Labels, trace: SampledTrace, finished_ns: int, first_byte: int
    ) -> None:
        exemplars, started, ids, at = self.exemplars, ctx.started, trace.hex_ids(), time.time()
        code = ctx.error_code
        duration = labels.duration if code is None else labels.with_error(code)
        exemplars.add(DURATION, duration, DURATION_BOUNDS, (finished_ns - started) / 1e9, ids, at)
        overhead = (finished_ns - started - ctx.upstream_ns) / 1e9
        exemplars.add(OVERHEAD, labels.base, OVERHEAD_BOUNDS, overhead, ids, at)
        if first_byte:
            exemplars.add(TTFT, labels.duration, TTFT_BOUNDS, (first_byte - started) / 1e9, ids, at)

    def _label_set(
        self, route: RouteView | None, deployment: DeploymentView | None, endpoint: Endpoint
    ) -> _Labels:
        model = route.name if route is not None else "unknown"
        deployment_id = deployment.id if deployment is not None else "none"
        provider = deployment.provider.name if deployment is not None else "none"
        labels = _Labels(model, deployment_id, provider, endpoint.name, self._metrics.add_set())
        self._label_sets.append(labels)
        # In the order of RequestMetrics' histogram kinds.
        self._series += [
            (OVERHEAD, labels.base),
            (DURATION, labels.duration),
            (TOKENS, labels.input),
            (TOKENS, labels.output),
            (TTFT, labels.duration),
            (TPOT, labels.duration),
        ]
        return labels

    def _error(self, labels: _Labels, code: str, latency_ns: int, ctx: RequestContext) -> None:
        """A request that ended in an error: its duration under its error type, and the upstream
        error or rejection counter."""
        counters = self.counters
        error = labels.with_error(code)
        self._observe(DURATION, error, latency_ns / 1e9)
        if ctx.error_upstream or ctx.status < 400:  # an error status, or a stream broken after 200
            key = ("gatecore_upstream_errors_total", f'{labels.base},error_type="{escape(code)}"')
            counters[key] = counters.get(key, 0.0) + 1.0
        elif code in _REJECTIONS:
            key = ("gatecore_rejections_total", f'{labels.by_model},reason="{_REJECTIONS[code]}"')
            counters[key] = counters.get(key, 0.0) + 1.0

    def _guardrails(self, labels: _Labels, counts: dict[tuple[str, str, str], int]) -> None:
        counters = self.counters
        for (guard, kind, action), times in counts.items():
            key = (
                "gatecore_guardrail_actions_total",
                f'{labels.by_model},guard="{escape(guard)}",type="{escape(kind)}",action="{escape(action)}"',
            )
            counters[key] = counters.get(key, 0.0) + times

    def _prompt(self, ctx: RequestContext, finished_ns: int) -> None:
        """A published prompt's call (prompts/): counted per prompt and version. Prompt names are the
        operators' published names, so the series stay bounded like the routes'."""
        prompt = ctx.prompt
        assert prompt is not None
        series = self._prompt_series.get((prompt.name, prompt.version))
        if series is None:
            series = self._prompt_series[(prompt.name, prompt.version)] = _prompt_series(
                prompt.name, prompt.version
            )
        counters, status, usage = self.counters, ctx.status, ctx.usage
        key = series[min(max(status // 100, 1), 5)]
        counters[key] = counters.get(key, 0.0) + 1.0
        labels = series[0][1]
        if usage is not None and status < 400:
            for key, count in ((series[6], usage.input_tokens), (series[7], usage.output_tokens)):
                counters[key] = counters.get(key, 0.0) + count
            if ctx.stream and ctx.first_byte_ns:
                self._observe(
                    "gatecore_prompt_time_to_first_token_seconds",
                    labels,
                    (ctx.first_byte_ns - ctx.started) / 1e9,
                )
        key = series[0]
        counters[key] = counters.get(key, 0.0) + (ctx.cost_usd or 0.0)
        self._observe("gatecore_prompt_duration_seconds", labels, (finished_ns - ctx.started) / 1e9)

    def _observe(self, name: str, labels: str, value: float) -> None:
        bounds = _BOUNDS[name]
        buckets = self.histograms.get((name, labels))
        if buckets is None:
            buckets = self.histograms[(name, labels)] = [0.0] * (len(bounds) + 2)
        buckets[bisect_left(bounds, value)] += 1
        buckets[-1] += value

    def snapshot(self) -> dict[str, object]:
        """This worker's figures, as plain JSON-able data (see telemetry/exposition.py)."""
        sets, metrics = self._label_sets, self._metrics
        extra_counters, extra_histograms = self.extra() if self.extra is not None else ([], [])
        return {
            "at": time.time(),
            "counters": [
                *([name, labels, value] for (name, labels), value in self.counters.items()),
                *(
                    ["gatecore_requests_total", sets[index].by_status[status_class], float(count)]
                    for index, status_class, count in metrics.request_counts()
                ),
                *(["gatecore_cost_usd_total", sets[index].base, cost] for index, cost in metrics.costs()),
                *extra_counters,
            ],
            "histograms": [
                *([name, labels, buckets] for (name, labels), buckets in self.histograms.items()),
                *([*self._series[index], row] for index, row in metrics.histogram_rows()),
                *(
                    ["gatecore_stage_duration_seconds", labels, row]
                    for labels, row in zip(self._stage_series, metrics.stage_rows(), strict=True)
                ),
                *extra_histograms,
            ],
            "in_flight": self.in_flight(),
            "deployments": self.deployments.snapshot() if self.deployments is not None else [],
            "process": self.process.snapshot(),
            "exemplars": self.exemplars.snapshot(),
        }

    def start(self) -> None:
        """Leave this worker's snapshot for the others' scrapes from the start, so its breakers count
        in `gatecore_deployment_state` before it has served anything."""
        if self.shared is not None:
            self.shared.write(self)

    async def aclose(self) -> None:
        if self.shared is not None:
            self.shared.close(self)
