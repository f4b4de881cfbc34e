"""Traces of requests that fail, retry, hedge or are not sampled, and of a server with two workers
whose spans are flushed when it stops."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from ..upstreams.otlp_receiver import OtlpReceiver
from ..upstreams.replica_mock import Replica
from .conftest import make_client, new_request_id
from .gateway import MASTER_KEY, Gateway, GatewayFactory
from .request_traces import check_structure, request_trace, tracing_config

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
STAGES = ["auth", "decode", "route", "limits"]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as otlp:
        yield otlp


def traced(
    factory: GatewayFactory,
    upstream: MockUpstream,
    refused: RefusedPort,
    receiver: OtlpReceiver,
    workers: int | None = None,
    **tracing: object,
) -> Gateway:
    config = tracing_config(upstream.base_url, refused.base_url, receiver, **tracing)
    # gpt-fallback: its only deployment refuses connections; gpt-test answers instead.
    config["models"].append(
        {
            "name": "gpt-fallback",
            "deployments": [{"provider": "down", "model": "m"}],
            "fallbacks": ["gpt-test"],
        }
    )
    return factory(config, workers=workers)


def sampled_flag(upstream: MockUpstream, rid: str) -> tuple[str, bool]:
    _, trace_id, _, flags = upstream.wait_for(rid).headers["traceparent"].split("-")
    return trace_id, bool(int(flags, 16) & 1)


def test_failures_are_error_spans_where_they_happened(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, receiver: OtlpReceiver
) -> None:
    gw = traced(gateway_factory, upstream, refused, receiver)
    # An upstream's 500, relayed: the attempt and the request are errors.
    rid = new_request_id()
    with make_client(gw) as client, pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            extra_body={"mock": {"status": 500}},
            extra_headers={"x-request-id": rid},
        )
    trace = request_trace(receiver, rid, 7)
    check_structure(trace)
    assert trace.names() == [*STAGES, "chat upstream-model-1", "relay"]
    server = trace.server
    assert server.status == "error" and server.status_message == "upstream_error"
    assert server.attributes["http.response.status_code"] == 500
    assert server.attributes["error.type"] == "upstream_error"
    (attempt,) = trace.attempts()
    assert attempt.status == "error" and attempt.attributes["http.response.status_code"] == 500
    assert attempt.attributes["error.type"] == "500"

    # No upstream answered: the attempt failed with the connection, and nothing was relayed.
    rid = new_request_id()
    with make_client(gw) as client, pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(
            model="gpt-refused", messages=MESSAGES, extra_headers={"x-request-id": rid}
        )
    assert info.value.status_code == 502
    trace = request_trace(receiver, rid, 6)
    check_structure(trace)
    assert trace.names() == [*STAGES, "chat upstream-model-1"]
    (attempt,) = trace.attempts()
    assert attempt.status == "error" and attempt.attributes["error.type"] == "upstream_unreachable"
    assert "http.response.status_code" not in attempt.attributes
    assert trace.server.status == "error" and trace.server.attributes["http.response.status_code"] == 502

    # gatecore's own refusals: the stage that refused is the error; a 4xx leaves the server span's
    # status unset (the client's error, per the HTTP conventions) with error.type saying why.
    rid = new_request_id()
    with make_client(gw) as client, pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="no-such-model", messages=MESSAGES, extra_headers={"x-request-id": rid}
        )
    trace = request_trace(receiver, rid, 4)
    check_structure(trace)
    assert trace.names() == ["auth", "decode", "route"]
    route = trace.child("route")
    assert route.status == "error" and route.attributes["error.type"] == "model_not_found"
    assert trace.server.status == "unset" and trace.server.attributes["error.type"] == "model_not_found"
    assert trace.server.attributes["http.response.status_code"] == 404
    assert trace.server.name == "chat no-such-model"

    rid = new_request_id()
    with make_client(gw, "sk-not-a-key-0000") as client, pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, extra_headers={"x-request-id": rid}
        )
    trace = request_trace(receiver, rid, 2)
    assert trace.names() == ["auth"] and trace.child("auth").status == "error"
    assert trace.server.attributes["http.response.status_code"] == 401
    assert "gatecore.key_prefix" not in trace.server.attributes
    assert all("sk-not-a-key" not in repr(s.attributes) for s in receiver.spans)


def test_a_fallback_is_a_second_attempt_in_the_same_trace(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, receiver: OtlpReceiver
) -> None:
    gw = traced(gateway_factory, upstream, refused, receiver)
    rid = new_request_id()
    with make_client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-fallback", messages=MESSAGES, extra_headers={"x-request-id": rid}
        )
    assert raw.headers["x-gatecore-attempts"] == "2"
    trace = request_trace(receiver, rid, 8)
    check_structure(trace)
    assert trace.names() == [*STAGES, "chat m", "chat upstream-model-1", "relay"]
    first, second = trace.attempts()
    assert first.attributes["gatecore.deployment"] == "down/m" and first.status == "error"
    assert first.attributes["gatecore.attempt"] == 1 and first.end_ns <= second.start_ns
    assert second.attributes["gatecore.deployment"] == "up/upstream-model-1" and second.status == "unset"
    assert second.attributes["gatecore.attempt"] == 2 and "gatecore.hedge" not in second.attributes
    assert trace.server.attributes["gatecore.attempts"] == 2
    assert trace.server.attributes["gatecore.deployment"] == "up/upstream-model-1"
    assert trace.server.attributes["gatecore.model"] == "gpt-fallback"
    assert trace.server.status == "unset"
    # The upstream that answered got the second attempt's context.
    traceparent = upstream.wait_for(rid).headers["traceparent"]
    assert traceparent.split("-")[1:3] == [trace.server.trace_id, second.span_id]


def test_a_hedge_is_an_attempt_beside_the_first(
    gateway_factory: GatewayFactory, receiver: OtlpReceiver
) -> None:
    with Replica() as primary, Replica() as secondary:
        gw = gateway_factory(
            {
                "providers": [
                    {"name": "primary", "kind": "openai", "base_url": primary.base_url, "api_key": "sk-up"},
                    {
                        "name": "secondary",
                        "kind": "openai",
                        "base_url": secondary.base_url,
                        "api_key": "sk-up",
                    },
                ],
                "models": [
                    {
                        "name": "hedged",
                        "timeouts": {"connect": 2, "first_byte": 10, "idle": 5, "total": 20},
                        "routing": {"hedge": {"delay_s": 0.2}},
                        "deployments": [
                            {"provider": "primary", "model": "up-a"},
                            {"provider": "secondary", "model": "up-b", "priority": 1},
                        ],
                    }
                ],
                "auth": {"master_key": MASTER_KEY},
                "telemetry": {
                    "tracing": {"enabled": True, "endpoint": receiver.traces_url, "schedule_delay_s": 0.05}
                },
            }
        )
        primary.steer = {"first_byte_delay_ms": 3000}
        rid = new_request_id()
        with make_client(gw) as client:
            raw = client.chat.completions.with_raw_response.create(
                model="hedged", messages=MESSAGES, extra_headers={"x-request-id": rid}
            )
        assert raw.headers["x-gatecore-model"] == "secondary/up-b"
        trace = request_trace(receiver, rid, 8)
        first, hedge = trace.attempts()
        assert first.attributes["gatecore.deployment"] == "primary/up-a"
        assert first.attributes.get("gatecore.cancelled") is True and first.status == "unset"
        assert hedge.attributes["gatecore.deployment"] == "secondary/up-b"
        assert (
            hedge.attributes["gatecore.hedge"] is True
            and hedge.attributes["http.response.status_code"] == 200
        )
        assert hedge.name == "chat up-b" and hedge.end_ns == trace.server.end_ns
        assert first.start_ns + 150_000_000 <= hedge.start_ns  # the hedge delay
        # Each replica received its own attempt's span as parent.
        for replica, attempt in ((primary, first), (secondary, hedge)):
            (request,) = replica.requests
            assert request.headers["traceparent"].split("-")[1:3] == [trace.server.trace_id, attempt.span_id]


def test_sampling_follows_the_ratio_and_the_clients_flag(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, receiver: OtlpReceiver
) -> None:
    gw = traced(gateway_factory, upstream, refused, receiver, sample_ratio=0.0)
    unsampled = [new_request_id() for _ in range(3)]
    with make_client(gw) as client:
        for rid in unsampled[:2]:
            client.chat.completions.create(
                model="gpt-test", messages=MESSAGES, extra_headers={"x-request-id": rid}
            )
        stream = client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, stream=True, extra_headers={"x-request-id": unsampled[2]}
        )
        assert list(stream)
        # A client's trace that is not sampled stays unsampled, and keeps its trace id upstream.
        client_trace = os.urandom(16).hex()
        off = new_request_id()
        client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            extra_headers={"x-request-id": off, "traceparent": f"00-{client_trace}-{os.urandom(8).hex()}-00"},
        )
        # A client's sampled trace is sampled whatever the ratio (parent-based).
        sampled = new_request_id()
        client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            extra_headers={
                "x-request-id": sampled,
                "traceparent": f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01",
            },
        )
    trace = request_trace(receiver, sampled, 7)
    time.sleep(0.3)  # six export intervals: anything else queued would have arrived
    assert receiver.traces() == {trace.server.trace_id: trace.spans}
    # Unsampled requests still hand the upstream a trace context, with the sampled flag off.
    ids = set()
    for rid in unsampled:
        trace_id, flag = sampled_flag(upstream, rid)
        assert not flag and trace_id != "0" * 32
        ids.add(trace_id)
    assert len(ids) == 3
    assert sampled_flag(upstream, off) == (client_trace, False)
    assert sampled_flag(upstream, sampled) == (trace.server.trace_id, True)


def test_the_otel_sampler_variables_decide_when_the_config_does_not(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, receiver: OtlpReceiver
) -> None:
    config = tracing_config(upstream.base_url, refused.base_url, receiver)

    def call(gw: Gateway, sampled: bool) -> tuple[str, str, str]:
        rid, trace_id, parent_id = new_request_id(), os.urandom(16).hex(), os.urandom(8).hex()
        with make_client(gw) as client:
            client.chat.completions.create(
                model="gpt-test",
                messages=MESSAGES,
                extra_headers={
                    "x-request-id": rid,
                    "traceparent": f"00-{trace_id}-{parent_id}-{'01' if sampled else '00'}",
                },
            )
        return rid, trace_id, parent_id

    # Not parent-based, ratio 0: a client's sampled trace is not kept, and goes on unsampled upstream.
    none = gateway_factory(
        config, env={"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}
    )
    rid, trace_id, _ = call(none, sampled=True)
    assert sampled_flag(upstream, rid) == (trace_id, False)
    # Not parent-based, every trace: a client's unsampled trace is kept, as the parent's child.
    every = gateway_factory(config, env={"OTEL_TRACES_SAMPLER": "always_on"})
    rid, trace_id, parent_id = call(every, sampled=False)
    trace = request_trace(receiver, rid, 7)
    assert (trace.server.trace_id, trace.server.parent_span_id) == (trace_id, parent_id)
    assert sampled_flag(upstream, rid) == (trace_id, True)
    time.sleep(0.3)  # six export intervals: the first gateway's request would have arrived
    assert receiver.traces() == {trace_id: trace.spans}


@pytest.mark.timeout(90)
def test_two_workers_export_and_flush_when_stopping(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, receiver: OtlpReceiver
) -> None:
    # Exports every 60 s only: what arrives before then was flushed by the shutdown.
    gw = traced(gateway_factory, upstream, refused, receiver, workers=2, schedule_delay_s=60)
    rids = [new_request_id() for _ in range(8)]
    for rid in rids:  # each on its own connection, so both workers get some
        with make_client(gw) as client:
            client.chat.completions.create(
                model="gpt-test", messages=MESSAGES, extra_headers={"x-request-id": rid}
            )
    time.sleep(0.3)
    assert receiver.spans == []
    gw.stop()
    for rid in rids:
        check_structure(request_trace(receiver, rid, 7))
    servers = [s for s in receiver.spans if s.kind == "server"]
    assert sorted(s.attributes["gatecore.request_id"] for s in servers) == sorted(rids)
    assert len(receiver.traces()) == 8


def test_without_stage_spans_a_trace_keeps_its_attempts_and_relay(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, receiver: OtlpReceiver
) -> None:
    gw = traced(gateway_factory, upstream, refused, receiver, stage_spans=False)
    rid, missing = new_request_id(), new_request_id()
    with make_client(gw) as client:
        client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, extra_headers={"x-request-id": rid}
        )
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(
                model="no-such-model", messages=MESSAGES, extra_headers={"x-request-id": missing}
            )
    trace = request_trace(receiver, rid, 3)
    check_structure(trace)
    assert trace.names() == ["chat upstream-model-1", "relay"]
    assert trace.server.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    trace = request_trace(receiver, missing, 1)
    assert trace.names() == [] and trace.server.attributes["error.type"] == "model_not_found"
