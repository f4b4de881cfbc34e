"""What the request context holds of the stages' own objects, as small Protocols.

The context is the ground floor: it names no stage's class. Each Protocol here declares only what code
outside the owning stage reads; the owner stores its own class (a `ModelRoute`, a `Grant`, …) and,
where it needs more than this, narrows the type back with an `isinstance` check at its entry point.
"""

from __future__ import annotations

from typing import Protocol


class ProviderView(Protocol):
    """A deployment's provider, as the stages see it."""

    @property
    def name(self) -> str:
        """The provider's configured name."""
        ...

    @property
    def tokenizer(self) -> str:
        """The tiktoken encoding that counts its tokens."""
        ...


class DeploymentView(Protocol):
    """The deployment a request was routed to (routing/deployment.py)."""

    @property
    def id(self) -> str:
        """`<provider>/<upstream model>` as configured."""
        ...

    @property
    def provider(self) -> ProviderView: ...

    @property
    def tokenizer(self) -> str:
        """What its prompts are counted with: a tiktoken encoding, or `hf:<path>` (request/tokens.py)."""
        ...

    @property
    def served_by(self) -> str | None:
        """The engine's reproducibility stamp (routing/engine_stamp.py); None when not known."""
        ...


class RouteView(Protocol):
    """The client-facing model a request was routed to (routing/table.py `ModelRoute`)."""

    @property
    def name(self) -> str: ...


class CacheTicket(Protocol):
    """What the cache stage decided for a request (cache/ticket.py `Ticket`): the answer's
    `x-gatecore-cache` state and, on a miss it may store, the bytes written to the client."""

    @property
    def state(self) -> str: ...

    def add(self, data: bytes) -> None:
        """One write of the answer to the client, in order."""
        ...


class LimitGrant(Protocol):
    """What the limits stage counted a request against (limits/grant.py `Grant`)."""

    def headers(self) -> list[tuple[str, str]]:
        """The `x-ratelimit-*` headers of the answer."""
        ...


class GpuShare(Protocol):
    """The GPU clock a request runs on (pricing/gpu_time.py `GpuMeter`)."""

    @property
    def usd_per_second(self) -> float: ...

    def end(self, mark: int, now_ns: int) -> float:
        """The request that started at `mark` ends: its share of the pool, in seconds."""
        ...


class TraceView(Protocol):
    """A request's trace context when tracing is on (telemetry/trace_spans.py)."""

    @property
    def sampled(self) -> bool: ...

    def hex_ids(self) -> tuple[str, str]:
        """(trace id, span id) in hex."""
        ...


class Abortable(Protocol):
    """An upstream exchange in flight, so that a client disconnect can abort it at once."""

    def abort(self) -> None: ...


class AnswerGuard(Protocol):
    """The output side of a request's guardrails (guardrails/answer.py), which the relays call: a
    whole hub-format answer, or a stream's hub events as they flow. Each raises a GatewayError
    (guardrail_blocked) to refuse; what a stream held back is then dropped."""

    @property
    def flagged(self) -> str | None:
        """The guard that flagged the request, shown as `x-gatecore-guardrail` (None: none)."""
        ...

    @property
    def checks_answer(self) -> bool:
        """Whether external guards check the answer (then `check_answer` is awaited before the
        answer, or a stream's final events, go out)."""
        ...

    async def check_answer(self) -> None:
        """The external guards on the answer's text; raises a GatewayError (guardrail_blocked)."""
        ...

    @property
    def reroute(self) -> str | None:
        """The model a flagging guard sends the request to instead (None: it stays)."""
        ...

    @property
    def counts(self) -> dict[tuple[str, str, str], int]:
        """What the guards did: (guard, entity type or check, action) → times; never the text."""
        ...

    def body(self, body: bytes) -> bytes:
        """A whole OpenAI chat or completion body, checked and rewritten."""
        ...

    def events(self, events: bytes) -> bytes:
        """Complete OpenAI SSE events in → the events that may go out now, in order (text may be
        held back until the window has been checked)."""
        ...

    def end(self) -> bytes:
        """What is still held, checked and released, at the stream's end."""
        ...
