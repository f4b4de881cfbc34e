"""The chain: the one list that owns the order of an inference request's stages, and its runner.

A stage is a callable taking the request context (Envoy's filter): it reads and fills the context, or
raises a `GatewayError` to answer the client itself; it never calls the next stage and knows none of
the others. One that may wait is an `async def __call__(ctx)`; one that never does is a plain
`def __call__(ctx) -> None`, which the runner calls without making a coroutine of it (about a
fifth of a microsecond saved per stage and request, measured in instructions: benches/README.md). `LINKS` below is the order, one line a stage: each line builds
its stage from the worker's `ChainParts` (None: not configured, left out of the chain at no cost).
Adding a capability is one module that defines its stage plus one line here. Stages from other
installed packages are placed among these by config (`pipeline.stages`, pipeline/plugins.py).

A timed link marks its end on the context (`RequestContext.stage_ends`): the stage durations of the
metrics, the trace's stage spans and `x-gatecore-timing` are read from those marks. An untimed link's
time counts in the next timed one (the body's read counts in `decode`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from types import FunctionType, MethodType
from typing import TYPE_CHECKING

from gatecore.config.schema import GatecoreConfig
from gatecore.errors import UPSTREAM_ERRORS, Answered, GatewayError
from gatecore.guardrails.stage import guard_stage
from gatecore.ledger.run_tag import RunTag
from gatecore.pipeline.debug_timing import DebugTiming
from gatecore.pipeline.decode_responses import DecodeResponses
from gatecore.pipeline.guard_reroute import GuardReroute
from gatecore.pipeline.read_body import ReadBody
from gatecore.pipeline.recording import Recorder, Recording
from gatecore.pipeline.responses_mode import ResponsesMode
from gatecore.pipeline.upstream_call import UpstreamCall
from gatecore.prompts.augment import augment_stage
from gatecore.request import Endpoint, RequestContext
from gatecore.routing.stage import RouteStage
from gatecore.telemetry.body_log import body_capture_stage

if TYPE_CHECKING:
    from gatecore.auth.stage import AuthStage
    from gatecore.cache.stage import Cache
    from gatecore.limits.stage import Limits
    from gatecore.pricing.book import PriceBook
    from gatecore.routing.pool_gate import PoolGate
    from gatecore.routing.table import RouteTable
    from gatecore.telemetry.tracing import Tracing
    from gatecore.upstream.deadlines import DeadlineSweeper

Stage = Callable[[RequestContext], Awaitable[object] | None]
_clock = time.perf_counter_ns


class ChainParts:
    """What the worker built that stages are made of (one per worker, shared by every chain)."""

    __slots__ = (
        "auth",
        "cache",
        "config",
        "decode",
        "limits",
        "prices",
        "queue",
        "routes",
        "stage_names",
        "sweeper",
    )

    def __init__(
        self,
        config: GatecoreConfig,
        auth: AuthStage,
        routes: RouteTable,
        prices: PriceBook,
        limits: Limits,
        sweeper: DeadlineSweeper,
    ):
        self.config = config
        self.auth = auth
        self.routes = routes
        self.prices = prices
        self.limits = limits
        self.sweeper = sweeper
        self.decode: Stage | None = None  # the inbound API's decoder, set per chain
        self.cache: Cache | None = None  # set by the worker when `cache.enabled`
        self.queue: PoolGate | None = None  # set by the worker when a model has a `queue`
        # The timed stages' names, in order, once the chain is built (DebugTiming reads them).
        self.stage_names: list[str] = []


class Link:
    """One line of the chain: the stage's name (its mark's label when timed; where config places
    other stages), how it is built, and whether it marks its end."""

    __slots__ = ("build", "name", "timed")

    def __init__(self, name: str, build: Callable[[ChainParts], Stage | None], timed: bool = True):
        self.name = name
        self.build = build
        self.timed = timed


# The chain, in order (DESIGN.md §1).
LINKS: tuple[Link, ...] = (
    Link("auth", lambda p: p.auth),  # 401: who is calling (from the headers; no body is read before)
    Link("read_body", lambda p: ReadBody(p.config.server.max_body_bytes, p.sweeper, _read_s(p)), timed=False),
    Link("run_tag", lambda p: RunTag(), timed=False),  # 400: a malformed x-gatecore-run-id
    Link("body_capture", lambda p: body_capture_stage(p.config.server), timed=False),  # opted-in keys
    Link("decode", lambda p: p.decode),  # 400: the client's API → the hub format's policy fields
    Link("prompt_augment", lambda p: augment_stage(p.config.prompts)),  # system-prompt prefix/suffix
    Link("route", lambda p: RouteStage(p.routes)),  # 404, 403: a model and a deployment
    Link("responses_mode", lambda p: responses_mode(p), timed=False),  # /v1/responses: native or translated
    Link("gpu_clock", lambda p: p.prices.clock_stage()),  # GPU-time pricing: the request's clock
    Link("limits", lambda p: p.limits),  # 429: rpm, tpm, concurrency, budgets
    Link("guard_input", lambda p: _guards(p, True)),  # 400 guardrail_blocked; PII rewritten; ctx.guard
    # The same stage untimed when the config has no guards (only the admin API's stored ones may
    # come): the stage names of metrics, spans and x-gatecore-timing stay those of the config.
    Link("guard_stored", lambda p: _guards(p, False), timed=False),
    Link("guard_reroute", lambda p: GuardReroute(p.routes, p.limits), timed=False),  # flagged: a safer model
    # x-gatecore-timing: before the cache, whose hits answer (and send the header) themselves
    Link("debug_timing", lambda p: DebugTiming(p.stage_names), timed=False),
    Link("cache", lambda p: p.cache.stage if p.cache else None),  # a stored answer (cache/)
    Link("queue", lambda p: p.queue),  # 429 queue_timeout: fair queuing while engines are busy
    Link(
        "upstream", lambda p: UpstreamCall(p.sweeper, p.config.server, p.limits), timed=False
    ),  # attempts, relay
)


def _guards(parts: ChainParts, configured: bool) -> Stage | None:
    """The guardrails stage on the link that fits the config (see LINKS)."""
    return guard_stage(parts.config) if bool(parts.config.guardrails) == configured else None


def responses_mode(parts: ChainParts) -> Stage | None:
    """The Responses route's post-route stage (pipeline/responses_mode.py); None on other routes."""
    if not isinstance(parts.decode, DecodeResponses):
        return None
    return ResponsesMode(parts.config.providers)


def _read_s(parts: ChainParts) -> float:
    return parts.config.server.body_read_timeout_s


def build_steps(parts: ChainParts, links: Sequence[Link]) -> tuple[tuple[Stage, bool], ...]:
    """The stages `links` build from `parts`, each with whether it marks its end; `parts.stage_names`
    is then the timed stages' names (the same for every inference chain: each has one decode)."""
    steps: list[tuple[Stage, bool]] = []
    names: list[str] = []
    parts.stage_names = names  # filled as the links are built: DebugTiming holds this list
    for link in links:
        stage = link.build(parts)
        if stage is None:
            continue
        steps.append((_callable(stage), link.timed))
        if link.timed:
            names.append(link.name)
    return tuple(steps)


def _callable(stage: Stage) -> Stage:
    """What the runner calls: a stage object's bound `__call__` (called directly, it skips the type's
    `__call__` lookup that calling the object makes on every request), or the function itself."""
    if isinstance(stage, FunctionType | MethodType):
        return stage
    call: Stage = stage.__call__  # type: ignore[operator]
    return call


class Chain:
    """The stages of one inference route, in order, and what runs around them: the trace's start,
    the error's bookkeeping, and the record at the end (pipeline/recording.py)."""

    __slots__ = ("after", "endpoint", "recording", "steps", "tracing")

    def __init__(
        self,
        endpoint: Endpoint,
        steps: tuple[tuple[Stage, bool], ...],
        recording: Recording,
        tracing: Tracing | None,
        after: Recorder | None = None,
    ):
        self.endpoint = endpoint
        self.steps = steps
        self.recording = recording
        self.tracing = tracing
        # A recorder of this route's requests alone (the Responses route's stored responses), run as
        # the request ends: the shared recorders' batch never calls it for every other request.
        self.after = after

    async def run(self, ctx: RequestContext, path: str) -> GatewayError | None:
        """Run the stages over `ctx` and record it. Returns the error to answer the client with when a
        stage refused or failed before anything was sent (None: answered, or the client is gone)."""
        tracing = self.tracing
        if tracing is not None:  # all that traces cost a request when they are off
            tracing.begin(ctx, path, ctx.headers)
        recording = self.recording
        recording.in_flight += 1
        ends = ctx.stage_ends
        try:
            for stage, timed in self.steps:
                waits = stage(ctx)
                if waits is not None:
                    await waits
                if timed:
                    ends.append(_clock())
            return None
        except Answered:  # a stage answered (a cache hit): nothing after it runs
            return None
        except GatewayError as exc:
            ctx.status = exc.status
            ctx.error_code = exc.code
            ctx.error_upstream = isinstance(exc, UPSTREAM_ERRORS)
            if ctx.client_gone:
                ctx.status = 499
                return None
            return exc
        finally:
            # The connection and its headers are granian's: let them go with the answer, not when
            # the recorders have run on the loop's next turn.
            ctx.upstream = ctx.client = ctx.headers = None
            if recording.recorders:
                recording.finished(ctx, _clock())
            after = self.after
            if after is not None:
                after.record(ctx, _clock())
            recording.in_flight -= 1
