"""Active health checks of local engines: a GET on each deployment's health path, in the background.

A deployment whose check fails `unhealthy_after` times in a row (connection refused, timeout, a
status other than 2xx, or a `/models` list without its model) is skipped by routing while a healthy
deployment exists; `healthy_after` good checks in a row bring it back. Checks run on the worker's loop
through the same keep-alive pools as requests, each deployment on its own interval, never on the
request path. On by default for the local engine kinds (ollama, tgi, triton), off for the others
unless a deployment turns them on (`health_check: true` or its own settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol
from urllib.parse import urlsplit

import msgspec

from gatecore.config.routing import HealthCheckConfig
from gatecore.errors import GatewayError
from gatecore.upstream.exchange import StandaloneExchange
from gatecore.upstream.pool import ConnectionPool, Origin, PoolSet
from gatecore.upstream.timeouts import Timeouts


class CheckedDeployment(Protocol):
    """What the checks read and flip of the deployment they check (routing/deployment.py)."""

    healthy: bool

    @property
    def id(self) -> str: ...

    @property
    def model(self) -> str: ...

    def hold(self) -> None:
        """Recompute when the deployment may be tried again."""
        ...


log = logging.getLogger("gatecore.routing")

# The path each kind's engine answers health on (vLLM, SGLang, TGI and llama.cpp: /health).
DEFAULT_PATHS = {"ollama": "/api/version", "triton": "/v2/health/ready"}
DEFAULT_PATH = "/health"
# Kinds checked unless a deployment says otherwise: local engines, which fail by going away.
LOCAL_KINDS = frozenset(("ollama", "tgi", "triton"))
MAX_BODY_BYTES = 1024 * 1024


class _Model(msgspec.Struct):
    id: str = ""


class _ModelList(msgspec.Struct):
    data: list[_Model] = []


_models_decoder = msgspec.json.Decoder(_ModelList)


def health_settings(
    setting: HealthCheckConfig | bool | None, kind: str, defaults: HealthCheckConfig
) -> HealthCheckConfig | None:
    """A deployment's health check settings, or None when it is not checked."""
    if setting is None:
        return defaults if kind in LOCAL_KINDS else None
    if setting is True:
        return defaults
    if setting is False:
        return None
    return setting


class HealthState:
    """What the checks found: for the admin view, and the counts that flip `Deployment.healthy`."""

    __slots__ = ("checked_at", "config", "failures", "last_error", "path", "successes")

    def __init__(self, config: HealthCheckConfig, path: str):
        self.config = config
        self.path = path
        self.failures = 0  # consecutive failed checks
        self.successes = 0  # consecutive good checks
        self.last_error: str | None = None
        self.checked_at = 0.0  # monotonic time of the last check; 0: none yet

    def record(self, deployment: CheckedDeployment, error: str | None) -> None:
        self.checked_at = time.monotonic()
        self.last_error = error
        if error is None:
            self.failures = 0
            self.successes += 1
            if not deployment.healthy and self.successes >= self.config.healthy_after:
                deployment.healthy = True
                log.warning("deployment %s is healthy again", deployment.id)
            return
        self.successes = 0
        self.failures += 1
        if deployment.healthy and self.failures >= self.config.unhealthy_after:
            deployment.healthy = False
            deployment.hold()
            log.warning("deployment %s failed %d health checks: %s", deployment.id, self.failures, error)


class HealthTarget:
    """One deployment to check: its health URL's pool and request head, and what a good answer is."""

    __slots__ = ("deployment", "expect_model", "head", "pool", "state", "timeouts")

    def __init__(
        self,
        base_url: str,
        pools: PoolSet,
        deployment: CheckedDeployment,
        state: HealthState,
        api_key: str | None,
    ):
        parts = urlsplit(base_url)
        origin = Origin(f"{parts.scheme}://{parts.netloc}")
        self.deployment = deployment
        self.state = state
        self.pool: ConnectionPool = pools.get(origin)
        # A /models list must name the deployment's model (an engine may serve another one).
        self.expect_model = (
            deployment.model if state.path.endswith("/models") and deployment.model != "*" else None
        )
        auth = f"authorization: Bearer {api_key}\r\n" if api_key else ""
        self.head = (
            f"GET {state.path} HTTP/1.1\r\nhost: {origin.host_header}\r\naccept: */*\r\n{auth}"
            "accept-encoding: identity\r\n\r\n"
        ).encode("latin-1")
        timeout = state.config.timeout_s
        self.timeouts = Timeouts(timeout, timeout, timeout, timeout)

    async def check(self) -> str | None:
        """One check: None when healthy, else what was wrong (never a secret: no headers quoted)."""
        # The pool wants a request context (for a client disconnect to abort through); a check has none.
        exchange = StandaloneExchange()
        try:
            response = await self.pool.exchange(exchange, self.head, b"", self.timeouts)
            body = await response.read_all(MAX_BODY_BYTES)
        except GatewayError as exc:
            return exc.message
        if not 200 <= response.status < 300:
            return f"HTTP {response.status}"
        if self.expect_model is not None:
            try:
                listed = {m.id for m in _models_decoder.decode(body).data}
            except msgspec.DecodeError:
                return "the model list is not valid JSON"
            if self.expect_model not in listed:
                return f"the model list does not name {self.expect_model}"
        return None


class HealthChecker:
    """Runs every target's checks, each on its own interval."""

    def __init__(self, targets: list[HealthTarget]):
        self.targets = targets
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(target)) for target in self.targets]

    async def _run(self, target: HealthTarget) -> None:
        interval = target.state.config.interval_s
        while True:
            target.state.record(target.deployment, await target.check())
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
