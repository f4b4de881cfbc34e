"""Reading one request's trace out of the loopback OTLP receiver, and the configs that export to it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..upstreams.otlp_receiver import OtlpReceiver, ReceivedSpan
from .gateway import standard_config


def tracing_config(
    upstream_base_url: str, refused_base_url: str, receiver: OtlpReceiver, **tracing: Any
) -> dict[str, Any]:
    """The standard config with tracing on, exporting to `receiver` every 50 ms."""
    config = standard_config(upstream_base_url, refused_base_url)
    config["telemetry"] = {
        "tracing": {"enabled": True, "endpoint": receiver.traces_url, "schedule_delay_s": 0.05, **tracing}
    }
    return config


@dataclass
class RequestTrace:
    """The spans of one request: its server span and every span under it."""

    server: ReceivedSpan
    spans: list[ReceivedSpan]

    @property
    def children(self) -> list[ReceivedSpan]:
        """The server span's direct children, in start order."""
        kids = [s for s in self.spans if s.parent_span_id == self.server.span_id]
        return sorted(kids, key=lambda s: (s.start_ns, s.end_ns))

    def names(self) -> list[str]:
        return [s.name for s in self.children]

    def child(self, name: str) -> ReceivedSpan:
        (span,) = [s for s in self.children if s.name == name]
        return span

    def attempts(self) -> list[ReceivedSpan]:
        """The upstream attempts' client spans, in attempt order."""
        return sorted(
            (s for s in self.children if s.kind == "client"), key=lambda s: s.attributes["gatecore.attempt"]
        )


def _complete(spans: list[ReceivedSpan], request_id: str, count: int) -> bool:
    servers = [s for s in spans if s.attributes.get("gatecore.request_id") == request_id]
    if len(servers) != 1:
        return False
    trace = [s for s in spans if s.trace_id == servers[0].trace_id]
    return len(trace) >= count


def request_trace(receiver: OtlpReceiver, request_id: str, spans: int, timeout: float = 10.0) -> RequestTrace:
    """The trace of the request with `x-request-id: request_id`, once `spans` of its spans arrived."""
    received = receiver.wait_for_spans(lambda got: _complete(got, request_id, spans), timeout)
    (server,) = [s for s in received if s.attributes.get("gatecore.request_id") == request_id]
    return RequestTrace(server, [s for s in received if s.trace_id == server.trace_id])


def check_structure(trace: RequestTrace) -> None:
    """One server span at the root of its trace (or under the client's span), every other span its
    child, every child inside its time, every span ended."""
    server = trace.server
    assert server.kind == "server"
    assert all(s.parent_span_id == server.span_id for s in trace.spans if s is not server), [
        (s.name, s.parent_span_id) for s in trace.spans
    ]
    assert len({s.span_id for s in trace.spans}) == len(trace.spans)
    for span in trace.spans:
        assert 0 < span.start_ns <= span.end_ns, span
    for child in trace.children:
        assert server.start_ns <= child.start_ns and child.end_ns <= server.end_ns, (
            child.name,
            child,
            server,
        )
