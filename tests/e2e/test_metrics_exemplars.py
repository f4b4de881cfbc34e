"""`/metrics` in OpenMetrics, as Prometheus asks for it: parsed by the Prometheus Python client's
OpenMetrics parser, with exemplars on the duration, time-to-first-token and overhead buckets that
name the traces the loopback collector received; the plain text format stays as it was."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.samples import Exemplar, Sample

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from ..upstreams.otlp_receiver import OtlpReceiver
from .conftest import make_client, new_request_id
from .gateway import Gateway, GatewayFactory
from .request_traces import request_trace, tracing_config

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)  # what Prometheus sends


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as otlp:
        yield otlp


def scrape(gw: Gateway, accept: str | None) -> tuple[str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"accept": accept} if accept else {})
        response = conn.getresponse()
        assert response.status == 200
        return response.getheader("content-type") or "", response.read().decode()
    finally:
        conn.close()


def openmetrics_families(text: str) -> list[Metric]:
    """The families as the Prometheus client's OpenMetrics parser reads them (it raises on a line
    the format does not allow)."""
    return list(parse_openmetrics(text))  # type: ignore[no-untyped-call]  # the client is untyped


def text_families(text: str) -> list[Metric]:
    return list(parse_text(text))


def bucket_exemplars(text: str, family: str) -> list[tuple[Sample, Exemplar]]:
    (histogram,) = [f for f in openmetrics_families(text) if f.name == family]
    return [
        (s, s.exemplar) for s in histogram.samples if s.name.endswith("_bucket") and s.exemplar is not None
    ]


@pytest.mark.timeout(60)
def test_openmetrics_buckets_lead_to_their_traces(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, receiver: OtlpReceiver
) -> None:
    gw = gateway_factory(tracing_config(upstream.base_url, refused.base_url, receiver))
    plain, streamed, failed = new_request_id(), new_request_id(), new_request_id()
    with make_client(gw) as client:
        client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, extra_headers={"x-request-id": plain}
        )
        with pytest.raises(openai.InternalServerError):
            client.with_options(max_retries=0).chat.completions.create(
                model="gpt-test",
                messages=MESSAGES,
                extra_body={"mock": {"status": 500}},
                extra_headers={"x-request-id": failed},
            )
        # The stream last: a bucket keeps its latest exemplar, and the overhead histogram has one
        # series for all three requests (the failed one's overhead could share the stream's bucket).
        stream = client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            stream=True,
            extra_body={"mock": {"first_byte_delay_ms": 40, "chunks": 3}},
            extra_headers={"x-request-id": streamed},
        )
        assert list(stream)
    traces = {rid: request_trace(receiver, rid, 6).server for rid in (plain, streamed, failed)}

    content_type, text = scrape(gw, PROMETHEUS_ACCEPT)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(text)}  # the reference parser accepts it
    assert families["gatecore_requests"].type == "counter"  # the family; its sample is ..._total
    assert any(s.name == "gatecore_requests_total" for s in families["gatecore_requests"].samples)

    def exemplar_of(family: str, rid: str) -> tuple[Sample, Exemplar]:
        server = traces[rid]
        (found,) = [
            pair for pair in bucket_exemplars(text, family) if pair[1].labels["trace_id"] == server.trace_id
        ]
        sample, exemplar = found
        assert exemplar.labels["span_id"] == server.span_id
        assert exemplar.value <= float(sample.labels["le"])  # in its bucket: not above its bound
        assert exemplar.timestamp is not None
        return found

    duration = "gen_ai_client_operation_duration_seconds"
    # The 40 ms stream sits in a bucket of its own, the failed request in its error type's series.
    stream_bucket, stream_duration = exemplar_of(duration, streamed)
    assert stream_duration.value >= 0.04 and "error_type" not in stream_bucket.labels
    assert exemplar_of(duration, failed)[0].labels["error_type"] == "upstream_error"
    ttft = exemplar_of("gen_ai_server_time_to_first_token_seconds", streamed)[1]
    assert 0.04 <= ttft.value <= stream_duration.value
    overhead = exemplar_of("gatecore_overhead_seconds", streamed)[1]
    assert 0 < overhead.value < 0.04
    # Every exemplar names one of these requests' traces.
    known = {server.trace_id for server in traces.values()}
    for family in (duration, "gatecore_overhead_seconds"):
        assert {e.labels["trace_id"] for _, e in bucket_exemplars(text, family)} <= known

    # Plain text (a curl, an older scraper): no exemplars, no EOF, and the text parser accepts it.
    content_type, text = scrape(gw, None)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert " # {" not in text and "# EOF" not in text
    assert {f.name for f in text_families(text)} >= {"gatecore_requests", duration}


@pytest.mark.timeout(60)
def test_no_exemplars_without_a_sampled_trace(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, receiver: OtlpReceiver
) -> None:
    gw = gateway_factory(tracing_config(upstream.base_url, refused.base_url, receiver, sample_ratio=0.0))
    with make_client(gw) as client:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    _, text = scrape(gw, PROMETHEUS_ACCEPT)
    families = {f.name: f for f in openmetrics_families(text)}
    assert sum(s.value for s in families["gatecore_requests"].samples) == 1
    assert " # {" not in text
