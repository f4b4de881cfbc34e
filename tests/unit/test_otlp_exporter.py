"""The OTLP/HTTP exporter against a loopback collector (tests/upstreams/otlp_receiver.py): batches
sent when full or when due, gzip, headers, retries of what the OTLP specification calls retryable,
drops of what it does not, queue overflow reported, everything flushed at close, no secret logged,
an https collector verified against a private CA."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gatecore._core import OtlpSpans
from gatecore.config.telemetry import TracingConfig
from gatecore.telemetry.otlp_export import OtlpExporter
from gatecore.upstream.deadlines import DeadlineSweeper

from ..upstreams.otlp_receiver import OtlpReceiver, ReceivedSpan

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SECRET = "collector-token-3f9a"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as otlp:
        yield otlp


def exporter(endpoint: str, **settings: Any) -> tuple[OtlpExporter, OtlpSpans]:
    config = TracingConfig(enabled=True, endpoint=endpoint, **settings)
    spans = OtlpSpans(
        {"service.name": "exporter-test"}, "gatecore", "0", config.batch_size, config.max_queue_size
    )
    return OtlpExporter(config, spans, DeadlineSweeper()), spans


def add(exp: OtlpExporter, spans: OtlpSpans, names: list[str]) -> None:
    for name in names:
        exp.notify(spans.add(TRACE_ID, spans.span_id(), 0, name, 1, 1, 2, {"n": name}))


async def received(receiver: OtlpReceiver, count: int, timeout: float = 5.0) -> list[ReceivedSpan]:
    return await asyncio.to_thread(receiver.wait_for_spans, lambda got: len(got) >= count, timeout)


@pytest.mark.asyncio
async def test_a_full_batch_goes_at_once_and_the_rest_when_due(receiver: OtlpReceiver) -> None:
    exp, spans = exporter(
        receiver.traces_url, batch_size=3, schedule_delay_s=0.4, headers={"x-collector-key": SECRET}
    )
    exp.start()
    started = time.monotonic()
    add(exp, spans, ["a", "b", "c", "d"])
    first = await received(receiver, 3)
    assert time.monotonic() - started < 0.3  # the full batch did not wait for the delay
    assert [s.name for s in first] == ["a", "b", "c"]
    everything = await received(receiver, 4)
    assert time.monotonic() - started >= 0.35  # "d" waited for it
    assert [s.name for s in everything] == ["a", "b", "c", "d"]
    headers = everything[0].export_headers
    assert headers["x-collector-key"] == SECRET
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["user-agent"].startswith("gatecore/")
    assert "content-encoding" not in headers
    assert receiver.exports == 2
    await exp.aclose()


@pytest.mark.asyncio
async def test_gzip_bodies_and_a_flush_at_close(receiver: OtlpReceiver) -> None:
    exp, spans = exporter(receiver.traces_url, compression="gzip", schedule_delay_s=30.0)
    exp.start()
    add(exp, spans, [f"s{i}" for i in range(5)])
    await asyncio.sleep(0.1)
    assert receiver.exports == 0  # not due for 30 s, and no batch is full
    await exp.aclose()  # the worker stops: what waits goes now
    got = receiver.spans
    assert [s.name for s in got] == [f"s{i}" for i in range(5)]
    assert got[0].export_headers["content-encoding"] == "gzip"
    assert len(spans) == 0


@pytest.mark.asyncio
async def test_credentials_in_the_url_go_as_basic_auth(receiver: OtlpReceiver) -> None:
    port = receiver.traces_url.split(":")[2].split("/")[0]
    exp, spans = exporter(f"http://tenant%40a:{SECRET}@127.0.0.1:{port}/v1/traces", batch_size=1)
    exp.start()
    add(exp, spans, ["authed"])
    (span,) = await received(receiver, 1)
    expected = base64.b64encode(f"tenant@a:{SECRET}".encode()).decode()
    assert span.export_headers["authorization"] == f"Basic {expected}"
    await exp.aclose()


@pytest.mark.asyncio
async def test_retryable_answers_are_retried_after_what_the_collector_asks(receiver: OtlpReceiver) -> None:
    receiver.fail_with = [503, 429]
    receiver.retry_after = "0"
    exp, spans = exporter(receiver.traces_url, batch_size=2, timeout_s=5.0)
    exp.start()
    add(exp, spans, ["a", "b"])
    got = await received(receiver, 2)
    assert [s.name for s in got] == ["a", "b"]
    assert receiver.refused == 2 and receiver.exports == 1
    await exp.aclose()


@pytest.mark.asyncio
async def test_a_rejected_batch_is_dropped_with_a_warning_and_no_secret(
    receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.fail_with = [400]
    port = receiver.traces_url.split(":")[2].split("/")[0]
    endpoint = f"http://user:{SECRET}@127.0.0.1:{port}/v1/traces?token={SECRET}"
    exp, spans = exporter(endpoint, batch_size=2, headers={"authorization": f"Bearer {SECRET}"})
    exp.start()
    with caplog.at_level(logging.WARNING, logger="gatecore.telemetry"):
        add(exp, spans, ["rejected-1", "rejected-2"])
        await asyncio.to_thread(lambda: receiver.wait_for_spans(lambda _: receiver.refused == 1))
        add(exp, spans, ["next-1", "next-2"])  # the exporter goes on
        got = await received(receiver, 2)
    assert [s.name for s in got] == ["next-1", "next-2"]  # the 400 was not retried
    assert "HTTP 400" in caplog.text and "2 spans dropped" in caplog.text
    assert f"http://127.0.0.1:{port}/v1/traces" in caplog.text
    assert SECRET not in caplog.text
    await exp.aclose()


@pytest.mark.asyncio
async def test_an_unreachable_collector_costs_the_batch_not_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exp, spans = exporter(f"http://127.0.0.1:{port}/v1/traces", batch_size=1, timeout_s=1.0)
    exp.start()
    with caplog.at_level(logging.WARNING, logger="gatecore.telemetry"):
        started = time.monotonic()
        add(exp, spans, ["lost"])
        await asyncio.sleep(0.05)
        # Retried with backoff within timeout_s, then dropped: close does not wait any longer.
        await exp.aclose()
        assert time.monotonic() - started < 2.5
    assert "Cannot connect" in caplog.text and "1 spans dropped" in caplog.text


@pytest.mark.asyncio
async def test_an_export_cancelled_mid_exchange_closes_its_connection() -> None:
    arrived = asyncio.Event()
    closed = asyncio.Event()

    async def silent_collector(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the request arrives and is never answered
        arrived.set()
        while await reader.read(65536):
            pass
        closed.set()
        writer.close()

    server = await asyncio.start_server(silent_collector, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        exp, spans = exporter(f"http://127.0.0.1:{port}/v1/traces", timeout_s=30.0)
        add(exp, spans, ["stalled"])
        export = asyncio.create_task(exp.flush())
        await asyncio.wait_for(arrived.wait(), 5)
        export.cancel()  # as the worker's loop does at exit
        with pytest.raises(asyncio.CancelledError):
            await export
        # The connection was neither idle nor closed: the exporter aborted it, the collector sees it go.
        await asyncio.wait_for(closed.wait(), 5)
        await exp.aclose()


@pytest.mark.asyncio
async def test_a_full_queue_drops_new_spans_and_says_so_once(
    receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    exp, spans = exporter(receiver.traces_url, batch_size=2, max_queue_size=4, schedule_delay_s=0.05)
    with caplog.at_level(logging.WARNING, logger="gatecore.telemetry"):
        add(exp, spans, [f"s{i}" for i in range(10)])  # nothing exports yet: the task is not started
        assert spans.dropped == 6
        exp.start()
        await received(receiver, 4)
        add(exp, spans, ["late"])
        await received(receiver, 5)
        await exp.aclose()
    assert caplog.text.count("span queue full") == 1
    assert "6 spans dropped so far" in caplog.text


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gatecore test collector")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "collector.pem", directory / "collector.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.mark.asyncio
async def test_an_https_collector_is_verified_against_the_configured_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = self_signed(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    for name in ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"):
        monkeypatch.delenv(name, raising=False)
    with OtlpReceiver(ssl_context=served) as receiver:
        assert receiver.traces_url.startswith("https://")
        exp, spans = exporter(receiver.traces_url, batch_size=1, certificate=str(cert))
        exp.start()
        add(exp, spans, ["over-tls"])
        assert [s.name for s in await received(receiver, 1)] == ["over-tls"]
        await exp.aclose()

        # The same CA from the OTLP environment variable.
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", str(cert))
        exp, spans = exporter(receiver.traces_url, batch_size=1)
        exp.start()
        add(exp, spans, ["from-env"])
        assert [s.name for s in await received(receiver, 2)][-1] == "from-env"
        await exp.aclose()

        # Without it, the system's CAs do not trust this collector: the batch is dropped, not sent.
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE")
        exp, spans = exporter(receiver.traces_url, batch_size=1, timeout_s=0.5)
        exp.start()
        with caplog.at_level(logging.WARNING, logger="gatecore.telemetry"):
            add(exp, spans, ["untrusted"])
            await asyncio.sleep(0.1)
            await exp.aclose()
        assert "1 spans dropped" in caplog.text
        assert [s.name for s in receiver.spans] == ["over-tls", "from-env"]
