"""`_core.OtlpSpans`: spans encoded by gatecore, decoded by the official OpenTelemetry protobuf
classes (opentelemetry-proto), field by field; batches, the bounded queue, bad attribute values."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gatecore._core import OtlpSpans

from ..upstreams.otlp_receiver import ReceivedSpan, decode_export

RESOURCE = {"service.name": "gatecore-unit", "service.version": "9.9", "host.cores": 2}
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7
PARENT_ID = 0x1234567890ABCDEF


def queue(batch_size: int = 512, max_spans: int = 2048) -> OtlpSpans:
    return OtlpSpans(RESOURCE, "gatecore", "1.2.3", batch_size, max_spans)


def exported(spans: OtlpSpans) -> list[ReceivedSpan]:
    body = spans.take()
    assert body is not None
    return decode_export(body, {})


def test_a_span_decodes_to_every_field_it_was_given() -> None:
    spans = queue()
    attributes = {
        "gen_ai.request.model": "gpt-test",
        "gen_ai.usage.input_tokens": 12,
        "negative": -5,
        "big": 2**63 - 1,
        "bigger": 2**70,  # past int64: a double, OTLP having no wider integer
        "gatecore.stream": True,
        "gatecore.overhead_ms": 0.125,
        "gen_ai.response.finish_reasons": ("stop", "length"),
        "listed": [1, 2],
        "unicode": "naïve ☃",
        "left.out": None,
    }
    waiting = spans.add(
        TRACE_ID,
        SPAN_ID,
        PARENT_ID,
        "chat gpt-test",
        2,
        1_700_000_000_000_000_001,
        1_700_000_000_123_456_789,
        attributes,
        2,
        "upstream_timeout",
        "vendor=abc,other=x1",
        0x301,
    )
    assert waiting == len(spans) == 1
    (span,) = exported(spans)
    assert span.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span.span_id == "00f067aa0ba902b7"
    assert span.parent_span_id == "1234567890abcdef"
    assert span.name == "chat gpt-test"
    assert span.kind == "server"
    assert (span.start_ns, span.end_ns) == (1_700_000_000_000_000_001, 1_700_000_000_123_456_789)
    assert (span.status, span.status_message) == ("error", "upstream_timeout")
    assert span.trace_state == "vendor=abc,other=x1"
    assert span.attributes == {
        "gen_ai.request.model": "gpt-test",
        "gen_ai.usage.input_tokens": 12,
        "negative": -5,
        "big": 2**63 - 1,
        "bigger": float(2**70),
        "gatecore.stream": True,
        "gatecore.overhead_ms": 0.125,
        "gen_ai.response.finish_reasons": ("stop", "length"),
        "listed": (1, 2),
        "unicode": "naïve ☃",
    }
    assert span.resource == RESOURCE
    assert span.scope == "gatecore"
    request = ExportTraceServiceRequest()
    spans.add(TRACE_ID, SPAN_ID, 0, "root", 1, 1, 2, None)
    body = spans.take()
    assert body is not None
    request.ParseFromString(body)
    scope_spans = request.resource_spans[0].scope_spans[0]
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("gatecore", "1.2.3")
    root = scope_spans.spans[0]
    assert root.parent_span_id == b"" and root.flags == 0 and not root.HasField("status")
    assert not root.attributes and not root.trace_state


def test_the_span_flags_field_carries_trace_flags_and_remoteness() -> None:
    spans = queue()
    spans.add(TRACE_ID, SPAN_ID, PARENT_ID, "s", 2, 1, 2, None, flags=0x301)
    request = ExportTraceServiceRequest()
    body = spans.take()
    assert body is not None
    request.ParseFromString(body)
    assert request.resource_spans[0].scope_spans[0].spans[0].flags == 0x301


def test_a_chain_is_spans_end_to_end_under_one_parent() -> None:
    spans = queue()
    offset = 1_700_000_000_000_000_000
    waiting = spans.add_chain(
        TRACE_ID, SPAN_ID, 0x101, ("auth", "decode", "route", "limits"), 100, [150, 170, 400], offset, "k=v"
    )
    assert waiting == 3  # as many as both names and ends have
    chain = exported(spans)
    assert [s.name for s in chain] == ["auth", "decode", "route"]
    assert [(s.start_ns - offset, s.end_ns - offset) for s in chain] == [(100, 150), (150, 170), (170, 400)]
    assert {(s.trace_id, s.parent_span_id, s.kind, s.trace_state) for s in chain} == {
        ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "internal", "k=v")
    }
    ids = {s.span_id for s in chain}
    assert len(ids) == 3 and "0" * 16 not in ids


def test_batches_are_taken_oldest_first_and_whole() -> None:
    spans = queue(batch_size=3)
    for i in range(7):
        assert spans.add(TRACE_ID, i + 1, 0, f"s{i}", 1, i, i + 1, None) == i + 1
    sizes = []
    names: list[str] = []
    while (body := spans.take()) is not None:
        batch = decode_export(body, {})
        sizes.append(len(batch))
        names += [s.name for s in batch]
    assert sizes == [3, 3, 1]
    assert names == [f"s{i}" for i in range(7)]
    assert len(spans) == 0 and spans.take() is None


def test_a_full_queue_drops_new_spans_and_counts_them() -> None:
    spans = queue(batch_size=2, max_spans=3)
    for i in range(5):
        assert spans.add(TRACE_ID, i + 1, 0, f"s{i}", 1, 1, 2, None) == min(i + 1, 3)
    assert spans.dropped == 2
    assert [s.name for s in exported(spans)] == ["s0", "s1"]
    spans.add(TRACE_ID, 9, 0, "after", 1, 1, 2, None)  # room again
    assert [s.name for s in exported(spans)] == ["s2", "after"]
    assert spans.dropped == 2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"bytes", "cannot export a bytes"),
        ({"nested": 1}, "cannot export a dict"),
        ((("nested",),), "cannot export a tuple"),
    ],
)
def test_a_value_otlp_cannot_carry_is_refused_and_adds_nothing(value: object, message: str) -> None:
    spans = queue()
    with pytest.raises(ValueError, match=message):
        spans.add(TRACE_ID, SPAN_ID, 0, "s", 1, 1, 2, {"fine": 1, "bad": value})
    assert len(spans) == 0 and spans.take() is None


def test_ids_are_random_nonzero_and_of_their_size() -> None:
    spans = queue()
    trace_ids = {spans.trace_id() for _ in range(2000)}
    span_ids = {spans.span_id() for _ in range(2000)}
    assert len(trace_ids) == len(span_ids) == 2000
    assert all(0 < t < 2**128 for t in trace_ids) and all(0 < s < 2**64 for s in span_ids)
    # The sampler reads a trace id's low 64 bits as uniform: about half are below the middle.
    low = sum((t & (2**64 - 1)) < 2**63 for t in trace_ids)
    assert 800 < low < 1200
    assert queue().span_id() not in span_ids  # another queue (another worker) draws other ids
