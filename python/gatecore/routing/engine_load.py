"""Engine-aware load: each local inference engine's own Prometheus `/metrics`, polled in the background.

vLLM, SGLang, TGI and llama.cpp publish how many requests they run and queue, and how full their
KV cache is. A `least_loaded` model routes by those figures instead of guessing from latency, and
sheds requests (429/503 with a Retry-After derived from the queue) when every replica's queue is past
`max_queue`. Polling runs on the worker's loop at `routing.engine_metrics.interval_s`, never on the
request path; a replica whose figures are missing or stale ranks as unknown load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from typing import Protocol
from urllib.parse import urlsplit

from gatecore.errors import GatewayError
from gatecore.routing.engine_stamp import MAX_INFO_BYTES, engine_family, stamp
from gatecore.upstream.exchange import StandaloneExchange
from gatecore.upstream.pool import ConnectionPool, Origin, PoolSet
from gatecore.upstream.timeouts import Timeouts


class LoadedDeployment(Protocol):
    """What the poller reads of the deployment it polls (routing/deployment.py): this worker's own
    requests in flight to it, its model there; and the stamp it writes (routing/engine_stamp.py)."""

    inflight: int
    model: str
    served_by: str | None


log = logging.getLogger("gatecore.routing")

# Gauge names per engine (summed over their series: one per engine process or data-parallel rank).
RUNNING = (
    "vllm:num_requests_running",
    "sglang:num_running_reqs",
    "tgi_batch_current_size",
    "llamacpp:requests_processing",
)
WAITING = (
    "vllm:num_requests_waiting",
    "sglang:num_queue_reqs",
    "tgi_queue_size",
    "llamacpp:requests_deferred",
)
# KV-cache use, 0..1 (the highest series counts).
KV_CACHE = (
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc",
    "sglang:token_usage",
    "llamacpp:kv_cache_usage_ratio",
)
# Finished requests (counters), for the rate a queue drains at.
FINISHED = ("vllm:request_success_total", "sglang:num_requests_total", "tgi_request_success")
MAX_METRICS_BYTES = 4 * 1024 * 1024
LORA_INFO = "vllm:lora_requests_info"
MAX_ADAPTERS = 256
MAX_ADAPTER_NAME = 256
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="([^"\\]*)"')
# How often a replica's engine version and model revision are read again (a restart may change them).
STAMP_EVERY_S = 60.0
RETRY_AFTER_MAX_S = 60


class EnginesBusy(GatewayError):
    """Every replica's queue is past the model's `max_queue`: shed rather than pile on (429 or 503)."""

    status = 429
    type = "rate_limit_error"
    code = "engines_busy"


class EngineLoad:
    """One replica's latest figures: requests running and waiting, KV-cache use (0..1)."""

    __slots__ = (
        "adapters",
        "at",
        "engine",
        "finished",
        "finished_rate",
        "inflight_at",
        "kv_cache",
        "running",
        "stale_after",
        "waiting",
    )

    def __init__(self, stale_after: float):
        self.stale_after = stale_after
        self.at = 0.0  # monotonic time of the last good read; 0: never
        self.running = 0.0
        self.waiting = 0.0
        self.kv_cache = 0.0
        self.finished: float | None = None
        self.finished_rate = 0.0  # finished requests per second between the last two reads
        self.inflight_at = 0  # this worker's in-flight requests to the replica when it was read
        self.engine: str | None = None  # vllm, sglang, tgi, llamacpp: by its metric names
        self.adapters: frozenset[str] = frozenset()  # LoRA adapters loaded (vLLM lora_requests_info)

    def fresh(self) -> bool:
        return self.at > 0 and time.monotonic() - self.at < self.stale_after

    def queued(self, inflight: int) -> float:
        """Waiting requests, counting what this worker sent since the read (not reported yet)."""
        return self.waiting + max(0, inflight - self.inflight_at)

    def score(self, inflight: int) -> float:
        """Lower is less loaded: queued work first, then running requests, then KV-cache use."""
        return self.queued(inflight) * 1000.0 + self.running + self.kv_cache

    def update(self, text: str, inflight: int) -> None:
        """Take the figures of one `/metrics` page."""
        now = time.monotonic()
        series = parse_metrics(text)
        self.engine = engine_family(series) or self.engine
        if LORA_INFO in series:
            self.adapters = lora_adapters(text)
        self.running = sum(sum(series.get(name, ())) for name in RUNNING)
        self.waiting = sum(sum(series.get(name, ())) for name in WAITING)
        self.kv_cache = max((max(series[name]) for name in KV_CACHE if name in series), default=0.0)
        finished = next((sum(series[name]) for name in FINISHED if name in series), None)
        if finished is not None and self.finished is not None and now > self.at and finished >= self.finished:
            self.finished_rate = (finished - self.finished) / (now - self.at)
        self.finished = finished
        self.at = now
        self.inflight_at = inflight

    def retry_after(self, max_queue: int, inflight: int) -> int:
        """Seconds until this replica's queue is below `max_queue` again: the excess over its recent
        completion rate, else (no rate known yet) one second per batch of queued requests."""
        queued = self.queued(inflight)
        if self.finished_rate > 0:
            seconds = (queued - max_queue + 1) / self.finished_rate
        else:
            seconds = queued / max(self.running, 1.0)
        return min(RETRY_AFTER_MAX_S, max(1, math.ceil(seconds)))


def lora_adapters(text: str) -> frozenset[str]:
    """The LoRA adapters vLLM reports running or waiting in its latest `vllm:lora_requests_info`
    series (labels `running_lora_adapters`, `waiting_lora_adapters`: comma-separated names; the
    value is the time of the report)."""
    latest = -math.inf
    names: frozenset[str] = frozenset()
    for line in text.splitlines():
        if not line.startswith(LORA_INFO + "{"):
            continue
        labels = dict(_LABEL.findall(line[len(LORA_INFO) + 1 : line.rfind("}")]))
        try:
            at = float(line[line.rfind("}") + 1 :].split()[0])
        except (ValueError, IndexError):
            continue
        if at >= latest:
            latest = at
            found = ",".join(
                (labels.get("running_lora_adapters", ""), labels.get("waiting_lora_adapters", ""))
            )
            names = frozenset(n[:MAX_ADAPTER_NAME] for n in found.split(",") if n)
    return frozenset(list(names)[:MAX_ADAPTERS])


def parse_metrics(text: str) -> dict[str, list[float]]:
    """Prometheus text exposition → metric name → the value of each of its series (comments and
    unparseable lines skipped)."""
    values: dict[str, list[float]] = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace != -1 and (space == -1 or brace < space):
            name = line[:brace]
            rest = line[line.rfind("}") + 1 :]
        elif space != -1:
            name, rest = line[:space], line[space:]
        else:
            continue
        fields = rest.split()
        if not fields:
            continue
        try:
            value = float(fields[0])
        except ValueError:
            continue
        if math.isfinite(value):
            values.setdefault(name, []).append(value)
    return values


def default_metrics_url(base_url: str | None) -> str | None:
    """`http://host:8000/v1` → `http://host:8000/metrics` (every engine serves it at the root)."""
    if not base_url:
        return None
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}/metrics"


class EngineTarget:
    """One replica to poll: its `/metrics` URL and the deployment its figures go to; with its base
    URL, where its version and model list are read for the stamp."""

    __slots__ = ("base_url", "deployment", "head", "load", "pool", "pools", "stamped_at", "url")

    def __init__(
        self,
        url: str,
        pools: PoolSet,
        deployment: LoadedDeployment,
        load: EngineLoad,
        base_url: str | None = None,
    ):
        parts = urlsplit(url)
        origin = Origin(url)
        self.url = url
        self.deployment = deployment
        self.load = load
        self.pools = pools
        self.pool: ConnectionPool = pools.get(origin)
        self.head = get_head(origin, (parts.path or "/metrics") + (f"?{parts.query}" if parts.query else ""))
        self.base_url = base_url
        self.stamped_at = -math.inf


def get_head(origin: Origin, path: str, accept: str = "text/plain") -> bytes:
    """The head of a GET of `path` on `origin`."""
    return (
        f"GET {path} HTTP/1.1\r\nhost: {origin.host_header}\r\naccept: {accept}\r\n"
        "accept-encoding: identity\r\n\r\n"
    ).encode("latin-1")


class EngineLoadPoller:
    """Polls every target on an interval, each read bounded by `timeout`."""

    def __init__(self, targets: list[EngineTarget], interval: float, timeout: float):
        self.targets = targets
        self.interval = interval
        self.timeouts = Timeouts(timeout, timeout, timeout, timeout)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.targets and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.gather(*(self._poll(target) for target in self.targets))
            await asyncio.sleep(self.interval)

    async def _poll(self, target: EngineTarget) -> None:
        # The pool wants a request context (for a client disconnect to abort through); a poll has none.
        exchange = StandaloneExchange()
        try:
            response = await target.pool.exchange(exchange, target.head, b"", self.timeouts)
            body = await response.read_all(MAX_METRICS_BYTES)
        except GatewayError as exc:
            log.debug("engine metrics %s: %s", target.url, exc.message)
            return
        if response.status != 200:
            log.debug("engine metrics %s: HTTP %d", target.url, response.status)
            return
        target.load.update(body.decode("utf-8", "replace"), target.deployment.inflight)
        if target.base_url is not None and time.monotonic() - target.stamped_at >= STAMP_EVERY_S:
            target.stamped_at = time.monotonic()
            await self._stamp(target, target.base_url)

    async def _stamp(self, target: EngineTarget, base_url: str) -> None:
        """Read the replica's version (`/version`, else TGI's `/info`) and model list for its stamp."""
        root = urlsplit(base_url)
        origin = Origin(base_url)
        pool = target.pools.get(origin)
        version = await self._get(pool, origin, "/version") or await self._get(pool, origin, "/info")
        models = await self._get(pool, origin, root.path.rstrip("/") + "/models")
        served_by = stamp(target.load.engine, version, models, target.deployment.model)
        if served_by is not None:
            target.deployment.served_by = served_by

    async def _get(self, pool: ConnectionPool, origin: Origin, path: str) -> bytes | None:
        try:
            response = await pool.exchange(
                StandaloneExchange(), get_head(origin, path, "application/json"), b"", self.timeouts
            )
            body = await response.read_all(MAX_INFO_BYTES)
        except GatewayError as exc:
            log.debug("engine info %s%s: %s", origin.host_header, path, exc.message)
            return None
        return body if response.status == 200 else None

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
