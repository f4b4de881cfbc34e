"""A loopback OpenTelemetry collector: OTLP/HTTP traces, as the OTLP specification defines them.

`POST /v1/traces` takes an `ExportTraceServiceRequest` in binary protobuf
(`Content-Type: application/x-protobuf`, optionally gzip-compressed), decodes it with the
opentelemetry-proto classes, keeps every span as a plain `ReceivedSpan` and answers 200 with an empty
`ExportTraceServiceResponse`. A body that does not decode is a 400, as a collector answers it.

Tests read `spans`, `traces()` and `wait_for_spans(...)`, and may script failures first
(`fail_with`: statuses answered, in order, to the next exports, a collector's 503 with `Retry-After`
or a 400 that rejects the batch); benches run it with `keep=False` (accept, decode and drop) as a
process of its own:

    python -m tests.upstreams.otlp_receiver --port 4318 --drop
"""

from __future__ import annotations

import argparse
import gzip
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from .mock_server import MockServer

PROTOBUF = "application/x-protobuf"
KINDS = {
    Span.SPAN_KIND_INTERNAL: "internal",
    Span.SPAN_KIND_SERVER: "server",
    Span.SPAN_KIND_CLIENT: "client",
    Span.SPAN_KIND_PRODUCER: "producer",
    Span.SPAN_KIND_CONSUMER: "consumer",
}
STATUSES = {Status.STATUS_CODE_UNSET: "unset", Status.STATUS_CODE_OK: "ok", Status.STATUS_CODE_ERROR: "error"}


@dataclass
class ReceivedSpan:
    """One exported span, ids as lower-case hex (`parent_span_id` is "" for a root span)."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status: str
    status_message: str
    resource: dict[str, Any]
    scope: str
    trace_state: str = ""
    export_headers: dict[str, str] = field(default_factory=dict)
    """The headers of the export request that carried it (lower-cased names)."""


def any_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as the Python value it holds (arrays as tuples, key-value lists as dicts)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(any_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return attributes_of(value.kvlist_value.values)
    return getattr(value, kind)


def attributes_of(pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pair: KeyValue
    for pair in pairs:
        out[pair.key] = any_value(pair.value)
    return out


def decode_export(body: bytes, headers: dict[str, str]) -> list[ReceivedSpan]:
    """Every span of one `ExportTraceServiceRequest`; raises DecodeError when it is not one."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            spans.extend(_received(span, resource, scope, headers) for span in scope_spans.spans)
    return spans


def _received(span: Span, resource: dict[str, Any], scope: str, headers: dict[str, str]) -> ReceivedSpan:
    return ReceivedSpan(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        name=span.name,
        kind=KINDS.get(span.kind, "unspecified"),
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        attributes=attributes_of(span.attributes),
        status=STATUSES.get(span.status.code, "unset"),
        status_message=span.status.message,
        resource=resource,
        scope=scope,
        trace_state=span.trace_state,
        export_headers=headers,
    )


class OtlpReceiver(MockServer):
    """An OTLP/HTTP traces endpoint on 127.0.0.1; `base_url/v1/traces` is what an exporter is given."""

    thread_name = "otlp-receiver"

    def __init__(
        self, host: str = "127.0.0.1", *, keep: bool = True, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(host, ssl_context=ssl_context)
        self.keep = keep
        self.exports = 0  # export requests that decoded
        self.refused = 0  # export requests answered with a scripted failure
        self.fail_with: list[int] = []
        self.retry_after: str | None = None  # sent with a scripted 429 or 503
        self._spans: list[ReceivedSpan] = []
        self._spans_cond = threading.Condition()

    @property
    def traces_url(self) -> str:
        return f"{self.origin}/v1/traces"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/traces", self._export)

    async def _export(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        with self._spans_cond:
            status = self.fail_with.pop(0) if self.fail_with else None
            if status is not None:
                self.refused += 1
                self._spans_cond.notify_all()
        if status is not None:
            headers = {"Retry-After": self.retry_after} if self.retry_after and status in (429, 503) else {}
            return web.Response(status=status, text="scripted failure", headers=headers)
        # aiohttp inflates a gzip body itself (its server decompresses by default); a body still
        # gzip-framed is inflated here.
        if request.headers.get("Content-Encoding", "").lower() == "gzip" and body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        if request.content_type != PROTOBUF:
            return web.Response(status=415, text=f"expected {PROTOBUF}")
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            if self.keep:
                spans = decode_export(body, headers)
            else:  # benches: the protobuf is parsed (in C), not turned into Python objects
                ExportTraceServiceRequest().ParseFromString(body)
        except DecodeError:
            return web.Response(status=400, text="not an ExportTraceServiceRequest")
        with self._spans_cond:
            self.exports += 1
            if self.keep:
                self._spans.extend(spans)
            self._spans_cond.notify_all()
        answer = ExportTraceServiceResponse().SerializeToString()
        return web.Response(status=200, body=answer, content_type=PROTOBUF)

    # -- what the tests read ---------------------------------------------------------------------------

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._spans_cond:
            return list(self._spans)

    def clear_spans(self) -> None:
        with self._spans_cond:
            self._spans.clear()

    def traces(self) -> dict[str, list[ReceivedSpan]]:
        """Spans by trace id, each trace's in the order received."""
        out: dict[str, list[ReceivedSpan]] = {}
        for span in self.spans:
            out.setdefault(span.trace_id, []).append(span)
        return out

    def wait_for_spans(
        self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 10.0
    ) -> list[ReceivedSpan]:
        """Wait until the spans received so far satisfy `predicate`, and return them."""
        deadline = time.monotonic() + timeout
        with self._spans_cond:
            while not predicate(self._spans):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = [(s.name, s.attributes.get("gatecore.request_id")) for s in self._spans]
                    raise TimeoutError(f"the receiver did not get the expected spans; it has {names}")
                self._spans_cond.wait(remaining)
            return list(self._spans)


def main() -> None:
    parser = argparse.ArgumentParser(description="A loopback OTLP/HTTP traces receiver.")
    parser.add_argument("--port", type=int, default=4318)
    parser.add_argument("--drop", action="store_true", help="decode and drop spans (for benches)")
    args = parser.parse_args()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    receiver = OtlpReceiver(keep=not args.drop)
    receiver.add_routes(app)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
