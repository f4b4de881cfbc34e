"""Per-worker metrics: each finished request folded into plain dict counters and histogram buckets.

`record` runs on the request's task after the answer went out; it only adds numbers (a few µs), so
the metrics cost no I/O on the request path. Series are keyed by (metric name, rendered label text);
label texts are built once per (model, deployment, endpoint) and cached. Labels are configured names
only (route names, `provider/model` deployments, endpoint kinds, error codes): never a key, a user or
a client's raw model string, so the number of series stays bounded.

Names follow the OpenTelemetry GenAI semantic conventions where one exists (`gen_ai_*`, attributes
as labels with dots turned into underscores); the rest are `gatecore_*`.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable
from typing import TYPE_CHECKING

from gatecore._core import RequestHistograms, StageHistogram
from gatecore.request import RequestContext

if TYPE_CHECKING:
    from gatecore.telemetry.deployment_state import DeploymentStates
    from gatecore.telemetry.worker_files import WorkerFiles

# Bucket bounds: the GenAI conventions' advised boundaries where they give some.
TOKEN_BOUNDS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BOUNDS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BOUNDS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BOUNDS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
OVERHEAD_BOUNDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# Stages take microseconds; upstream_connect, a TCP (and TLS) handshake when no pooled connection is free.
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
}
_BOUNDS = {name: family[2] for name, family in FAMILIES.items() if family[0] == "histogram"}
OVERHEAD = "gatecore_overhead_seconds"
DURATION = "gen_ai_client_operation_duration_seconds"
TTFT = "gen_ai_server_time_to_first_token_seconds"
TPOT = "gen_ai_server_time_per_output_token_seconds"
TOKENS = "gen_ai_client_token_usage"
_OPERATIONS = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings"}
_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
_REJECTIONS = {"rate_limit_exceeded": "rate_limit", "budget_exceeded": "budget"}

Series = tuple[str, str]  # (metric name, label text without braces)


def label_text(**labels: str) -> str:
    """`a="x",b="y"` with Prometheus escaping (backslash, quote, newline)."""
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Labels:
    """The label texts of one (model, deployment, endpoint), built once, and the index of its six
    histograms in the recorder's `RequestHistograms`."""

    __slots__ = ("base", "by_model", "by_status", "duration", "histograms", "input", "model", "output")

    def __init__(self, model: str, deployment: str, provider: str, endpoint: str, histograms: int):
        self.model = model
        self.histograms = histograms
        self.base = label_text(model=model, deployment=deployment, endpoint=endpoint)
        self.by_model = label_text(model=model)
        self.by_status: dict[int, str] = {}
        genai = label_text(
            gen_ai_operation_name=_OPERATIONS.get(endpoint, endpoint),
            gen_ai_provider_name=provider,
            gen_ai_request_model=model,
        )
        self.duration = genai
        self.input = genai + ',gen_ai_token_type="input"'
        self.output = genai + ',gen_ai_token_type="output"'

    def status(self, status: int) -> str:
        text = self.by_status.get(status)
        if text is None:
            # 0: the request ended before any answer (an unexpected error, answered with a 500).
            status_class = _STATUS_CLASSES.get(status // 100, "5xx")
            text = self.by_status[status] = f'{self.base},status_class="{status_class}"'
        return text


class MetricsRecorder:
    """A Recorder (pipeline/gateway.py) that aggregates finished requests into this worker's series.

    With `shared` (several workers), each change schedules a write of this worker's snapshot for the
    others' scrapes.
    """

    __slots__ = (
        "_labels",
        "_requests",
        "_series",
        "_stage_series",
        "_stages",
        "counters",
        "deployments",
        "histograms",
        "in_flight",
        "shared",
    )

    def __init__(
        self,
        in_flight: Callable[[], int],
        shared: WorkerFiles | None = None,
        stage_names: tuple[str, ...] = (),
        deployments: DeploymentStates | None = None,
    ):
        self.counters: dict[Series, float] = {}
        # Per-bucket counts (one per bound, then +Inf), then the sum of observed values: the rare
        # series (durations of failed requests, by error type); the per-request ones are in Rust,
        # six per label set (`_requests`), each named by `_series` at its index.
        self.histograms: dict[Series, list[float]] = {}
        self._requests = RequestHistograms(
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
        )
        self._series: list[Series] = []
        self.in_flight = in_flight
        self.shared = shared
        self.deployments = deployments
        self._labels: dict[tuple[str, str, str], _Labels] = {}
        # The stage histogram: per stage in `stage_names`' order (auth, decode, the pipeline's stages),
        # then upstream_connect and relay (rows of `StageHistogram`, filled in Rust).
        self._stage_series = [label_text(stage=name) for name in (*stage_names, CONNECT_STAGE, RELAY_STAGE)]
        self._stages = StageHistogram(len(stage_names), list(_STAGE_BOUNDS_NS))

    def record(self, ctx: RequestContext, finished_ns: int) -> None:
        route, deployment = ctx.route, ctx.deployment
        model = route.name if route is not None else "unknown"
        deployment_id = deployment.id if deployment is not None else "none"
        endpoint = ctx.endpoint.name
        labels = self._labels.get((model, deployment_id, endpoint))
        if labels is None:
            provider = deployment.provider.name if deployment is not None else "none"
            labels = self._labels[(model, deployment_id, endpoint)] = self._label_set(
                model, deployment_id, provider, endpoint
            )
        counters = self.counters
        key = ("gatecore_requests_total", labels.status(ctx.status))
        counters[key] = counters.get(key, 0.0) + 1.0
        started = ctx.started
        latency_ns = finished_ns - started
        overhead_ns = latency_ns - ctx.upstream_ns
        if ctx.stage_ends:
            # Each stage the request got through. Once through them all: `relay`, the rest of
            # gatecore's overhead (attempts' bookkeeping, decoding and encoding the answer, writing
            # it), so the stages and relay add up to the request's overhead; and `upstream_connect`,
            # from the end of the stages to the request written to an upstream connection (building
            # the provider's request, taking a pooled connection or opening one), which is counted
            # in the upstream's time, not overhead.
            self._stages.observe(started, ctx.stage_ends, ctx.upstream_sent_ns, overhead_ns)
        code = ctx.error_code
        # Tokens of answered requests; TTFT and time per output token of streamed ones (-1: none).
        input_tokens = output_tokens = ttft_ns = -1
        tpot_s = -1.0
        usage = ctx.usage
        if usage is not None and ctx.status < 400:
            input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
            first = ctx.first_byte_ns
            if ctx.stream and first:
                ttft_ns = first - started
                if output_tokens > 1:
                    tpot_s = (finished_ns - first) / 1e9 / (output_tokens - 1)
        self._requests.observe(
            labels.histograms,
            overhead_ns,
            latency_ns if code is None else -1,  # a failed request's duration is labelled below
            input_tokens,
            output_tokens,
            ttft_ns,
            tpot_s,
        )
        if code is not None:
            self._error(labels, code, latency_ns, ctx)
        if ctx.cost_usd:
            key = ("gatecore_cost_usd_total", labels.base)
            counters[key] = counters.get(key, 0.0) + ctx.cost_usd
        if self.shared is not None:
            self.shared.changed(self)

    def _label_set(self, model: str, deployment: str, provider: str, endpoint: str) -> _Labels:
        labels = _Labels(model, deployment, provider, endpoint, self._requests.add_set())
        # In the order of RequestHistograms' kinds.
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
        error = f'{labels.duration},error_type="{_escape(code)}"'
        self._observe(DURATION, error, latency_ns / 1e9)
        if ctx.error_upstream or ctx.status < 400:  # an error status, or a stream broken after 200
            key = ("gatecore_upstream_errors_total", f'{labels.base},error_type="{_escape(code)}"')
            counters[key] = counters.get(key, 0.0) + 1.0
        elif code in _REJECTIONS:
            key = ("gatecore_rejections_total", f'{labels.by_model},reason="{_REJECTIONS[code]}"')
            counters[key] = counters.get(key, 0.0) + 1.0

    def _observe(self, name: str, labels: str, value: float) -> None:
        bounds = _BOUNDS[name]
        buckets = self.histograms.get((name, labels))
        if buckets is None:
            buckets = self.histograms[(name, labels)] = [0.0] * (len(bounds) + 2)
        buckets[bisect_left(bounds, value)] += 1
        buckets[-1] += value

    def snapshot(self) -> dict[str, object]:
        """This worker's figures, as plain JSON-able data (see telemetry/exposition.py)."""
        return {
            "at": time.time(),
            "counters": [[name, labels, value] for (name, labels), value in self.counters.items()],
            "histograms": [
                *([name, labels, buckets] for (name, labels), buckets in self.histograms.items()),
                *([*self._series[index], row] for index, row in self._requests.rows()),
                *(
                    ["gatecore_stage_duration_seconds", labels, row]
                    for labels, row in zip(self._stage_series, self._stages.rows(), strict=True)
                ),
            ],
            "in_flight": self.in_flight(),
            "deployments": self.deployments.snapshot() if self.deployments is not None else [],
        }

    def start(self) -> None:
        """Leave this worker's snapshot for the others' scrapes from the start, so its breakers count
        in `gatecore_deployment_state` before it has served anything."""
        if self.shared is not None:
            self.shared.write(self)

    async def aclose(self) -> None:
        if self.shared is not None:
            self.shared.write(self)
