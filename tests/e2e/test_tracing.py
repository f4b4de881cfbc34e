"""OpenTelemetry traces: the real server exports OTLP/HTTP to a loopback receiver, which decodes the
protobuf; each request is one trace with a server span, its stages and its upstream attempts as
children, GenAI attributes, and the trace context handed to the upstream."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
from openai.types.chat import ChatCompletionMessageParam

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from ..upstreams.otlp_receiver import OtlpReceiver, ReceivedSpan
from .anthropic_client import make_anthropic
from .conftest import make_client, new_request_id
from .gateway import MASTER_KEY, TEAM_KEY, UPSTREAM_KEY, Gateway, GatewayFactory
from .request_traces import check_structure, request_trace, tracing_config

PROMPT = "the-traced-prompt-text-5521"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": f"{PROMPT} one two"}]
COLLECTOR_KEY = "collector-secret-e2e-8c1d"
STAGES = ["auth", "decode", "route", "limits"]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as otlp:
        yield otlp


@pytest.fixture
def gw(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, receiver: OtlpReceiver
) -> Gateway:
    config = tracing_config(
        upstream.base_url,
        refused.base_url,
        receiver,
        headers={"x-collector-key": "${COLLECTOR_KEY}"},
        service_name="gatecore-e2e",
    )
    return gateway_factory(config, env={"COLLECTOR_KEY": COLLECTOR_KEY})


def upstream_traceparent(upstream: MockUpstream, rid: str) -> tuple[str, str, str, bool]:
    """(version, trace id, parent span id, sampled) of the traceparent the upstream received (the
    other flag bits are W3C level 2's `random`, set on trace ids gatecore made)."""
    version, trace_id, span_id, flags = upstream.wait_for(rid).headers["traceparent"].split("-")
    assert len(flags) == 2
    return version, trace_id, span_id, bool(int(flags, 16) & 1)


def no_secret_in(spans: list[ReceivedSpan]) -> None:
    for span in spans:
        text = repr((span.name, span.attributes, span.resource, span.status_message))
        for secret in (MASTER_KEY, TEAM_KEY, UPSTREAM_KEY, COLLECTOR_KEY, PROMPT, "mock: "):
            assert secret not in text, (secret, span.name)


def test_a_request_is_one_trace_of_its_stages_and_upstream_call(
    gw: Gateway, upstream: MockUpstream, receiver: OtlpReceiver
) -> None:
    rid = new_request_id()
    with make_client(gw, TEAM_KEY) as client:
        answer = client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, max_tokens=50, extra_headers={"x-request-id": rid}
        )
    assert answer.usage is not None
    trace = request_trace(receiver, rid, 7)
    check_structure(trace)
    assert len(trace.spans) == 7
    assert receiver.traces()[trace.server.trace_id] == trace.spans  # nothing else in this trace
    assert trace.server.parent_span_id == ""  # no traceparent from the client: a new trace
    assert trace.names() == [*STAGES, "chat upstream-model-1", "relay"]
    server = trace.server
    assert server.name == "chat gpt-test"
    assert server.status == "unset"
    assert server.scope == "gatecore"
    assert server.resource["service.name"] == "gatecore-e2e"
    attributes = server.attributes
    expected = {
        "http.request.method": "POST",
        "http.route": "/v1/chat/completions",
        "http.response.status_code": 200,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-test",
        "gen_ai.request.max_tokens": 50,
        "gen_ai.response.model": "upstream-model-1",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.usage.input_tokens": answer.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": answer.usage.completion_tokens,
        "gen_ai.response.finish_reasons": ("stop",),
        "gatecore.model": "gpt-test",
        "gatecore.deployment": "up/upstream-model-1",
        "gatecore.provider": "up",
        "gatecore.attempts": 1,
        "gatecore.stream": False,
        "gatecore.request_id": rid,
    }
    assert {k: attributes.get(k) for k in expected} == expected
    prefix = attributes["gatecore.key_prefix"]
    assert prefix.endswith("…") and TEAM_KEY.startswith(prefix[:-1]) and len(prefix) < len(TEAM_KEY) - 4
    assert 0 <= attributes["gatecore.overhead_ms"] < (server.end_ns - server.start_ns) / 1e6
    # The upstream attempt: a client span whose context is what the upstream received.
    (attempt,) = trace.attempts()
    assert attempt.kind == "client" and attempt.status == "unset"
    assert attempt.attributes["gen_ai.request.model"] == "upstream-model-1"
    assert attempt.attributes["http.response.status_code"] == 200
    assert attempt.attributes["server.address"] == "127.0.0.1"
    assert attempt.attributes["server.port"] == upstream.port
    assert attempt.attributes["gatecore.attempt"] == 1
    assert upstream_traceparent(upstream, rid) == ("00", server.trace_id, attempt.span_id, True)
    # The stages follow each other; the relay starts at the answer's head and ends with the request.
    stages = [trace.child(name) for name in STAGES]
    assert stages[0].start_ns == server.start_ns
    assert all(a.end_ns == b.start_ns for a, b in itertools.pairwise(stages))
    assert stages[-1].end_ns <= attempt.start_ns
    assert trace.child("relay").end_ns == server.end_ns == attempt.end_ns
    # The exporter sent the configured header; no key, prompt or answer text is in any span.
    assert server.export_headers["x-collector-key"] == COLLECTOR_KEY
    no_secret_in(receiver.spans)
    assert COLLECTOR_KEY not in gw.output() and UPSTREAM_KEY not in gw.output()


def test_the_clients_traceparent_is_the_parent(
    gw: Gateway, upstream: MockUpstream, receiver: OtlpReceiver
) -> None:
    trace_id, parent_id = os.urandom(16).hex(), os.urandom(8).hex()
    rid = new_request_id()
    headers = {
        "x-request-id": rid,
        "traceparent": f"00-{trace_id}-{parent_id}-01",
        "tracestate": "vendor=abc,other=x1",
    }
    with make_client(gw) as client:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES, extra_headers=headers)
    trace = request_trace(receiver, rid, 7)
    check_structure(trace)
    assert trace.server.trace_id == trace_id
    assert trace.server.parent_span_id == parent_id
    assert trace.server.trace_state == "vendor=abc,other=x1"
    (attempt,) = trace.attempts()
    assert upstream_traceparent(upstream, rid) == ("00", trace_id, attempt.span_id, True)
    assert upstream.wait_for(rid).headers["tracestate"] == "vendor=abc,other=x1"

    # A malformed traceparent is ignored: a new trace, still propagated.
    rid = new_request_id()
    with make_client(gw) as client:
        client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, extra_headers={"x-request-id": rid, "traceparent": "00-zz-1"}
        )
    trace = request_trace(receiver, rid, 7)
    assert trace.server.parent_span_id == ""
    assert upstream_traceparent(upstream, rid)[1] == trace.server.trace_id


def test_a_stream_is_traced_to_its_end(gw: Gateway, upstream: MockUpstream, receiver: OtlpReceiver) -> None:
    rid = new_request_id()
    with make_client(gw) as client:
        stream = client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"mock": {"chunks": 4, "first_byte_delay_ms": 30, "gap_ms": 20}},
            extra_headers={"x-request-id": rid},
        )
        chunks = list(stream)
    usage = chunks[-1].usage
    assert usage is not None
    trace = request_trace(receiver, rid, 7)
    check_structure(trace)
    assert trace.names() == [*STAGES, "chat upstream-model-1", "relay"]
    attributes = trace.server.attributes
    assert attributes["gatecore.stream"] is True
    assert attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gatecore.time_to_first_byte_ms"] >= 30
    # The attempt's span covers the whole stream; the relay is the part after the answer's head.
    (attempt,) = trace.attempts()
    relay = trace.child("relay")
    assert attempt.end_ns == relay.end_ns == trace.server.end_ns
    assert (relay.end_ns - relay.start_ns) / 1e6 >= 3 * 20 - 5  # the gaps between the chunks
    assert upstream_traceparent(upstream, rid) == ("00", trace.server.trace_id, attempt.span_id, True)
    no_secret_in(trace.spans)


def test_the_anthropic_route_is_traced_too(
    gw: Gateway, upstream: MockUpstream, receiver: OtlpReceiver
) -> None:
    rid = new_request_id()
    with make_anthropic(gw) as client:
        message = client.messages.create(
            model="gpt-test",
            max_tokens=64,
            messages=[{"role": "user", "content": f"{PROMPT} hello"}],
            extra_headers={"x-request-id": rid},
        )
    trace = request_trace(receiver, rid, 7)
    check_structure(trace)
    assert trace.names() == [*STAGES, "chat upstream-model-1", "relay"]
    attributes = trace.server.attributes
    assert trace.server.name == "chat gpt-test"
    assert attributes["http.route"] == "/v1/messages"
    assert attributes["gen_ai.usage.input_tokens"] == message.usage.input_tokens
    assert attributes["gen_ai.usage.output_tokens"] == message.usage.output_tokens
    assert attributes["gen_ai.request.max_tokens"] == 64
    # The hub format's finish reason (OpenAI's), which the client saw as end_turn.
    assert message.stop_reason == "end_turn" and attributes["gen_ai.response.finish_reasons"] == ("stop",)
    (attempt,) = trace.attempts()
    assert upstream_traceparent(upstream, rid) == ("00", trace.server.trace_id, attempt.span_id, True)

    rid = new_request_id()
    with (
        make_anthropic(gw) as client,
        client.messages.stream(
            model="gpt-test",
            max_tokens=64,
            messages=[{"role": "user", "content": f"{PROMPT} streamed"}],
            extra_headers={"x-request-id": rid},
        ) as stream,
    ):
        final = stream.get_final_message()
    trace = request_trace(receiver, rid, 7)
    check_structure(trace)
    assert trace.server.attributes["gatecore.stream"] is True
    assert trace.server.attributes["gen_ai.usage.output_tokens"] == final.usage.output_tokens
    no_secret_in(receiver.spans)


def test_compression_and_resource_come_from_the_otel_variables(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, receiver: OtlpReceiver
) -> None:
    config = tracing_config(upstream.base_url, refused.base_url, receiver)
    env = {
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_EXPORTER_OTLP_HEADERS": f"x-collector-key={COLLECTOR_KEY}",
        "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-env,deployment.environment=e2e%20test",
    }
    gw = gateway_factory(config, env=env)
    rid = new_request_id()
    with make_client(gw) as client:
        client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, extra_headers={"x-request-id": rid}
        )
    trace = request_trace(receiver, rid, 7)
    check_structure(trace)
    server = trace.server
    assert server.export_headers["content-encoding"] == "gzip"
    assert server.export_headers["x-collector-key"] == COLLECTOR_KEY
    assert server.resource["service.name"] == "from-env"
    assert server.resource["deployment.environment"] == "e2e test"
    assert server.resource["telemetry.sdk.name"] == "gatecore"
    assert COLLECTOR_KEY not in gw.output()


def test_access_log_lines_lead_to_their_traces(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, receiver: OtlpReceiver
) -> None:
    config = tracing_config(upstream.base_url, refused.base_url, receiver)
    config["server"] = {"access_log": True}
    gw = gateway_factory(config)
    sampled, unsampled = new_request_id(), new_request_id()
    client_trace = os.urandom(16).hex()
    with make_client(gw) as client:
        client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, extra_headers={"x-request-id": sampled}
        )
        client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            extra_headers={"x-request-id": unsampled, "traceparent": f"00-{client_trace}-{'ab' * 8}-00"},
        )
    # A sampled request's line names its trace and its server span.
    server = request_trace(receiver, sampled, 7).server
    line = gw.wait_access_log(sampled)
    assert (line["trace_id"], line["span_id"]) == (server.trace_id, server.span_id)
    # An unsampled one's names what its upstream received, where the upstream's own logs lead.
    _, trace_id, span_id, _ = upstream.wait_for(unsampled).headers["traceparent"].split("-")
    line = gw.wait_access_log(unsampled)
    assert (line["trace_id"], line["span_id"]) == (client_trace, span_id)
    assert trace_id == client_trace
