"""`telemetry.tracing`: off by default without loading the tracer at all, its settings checked with
their paths, the exporter's endpoint, headers and resource from the config or the OTEL_* variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from gatecore.config import ConfigError, load_config

CONFIG: dict[str, Any] = {
    "providers": [{"name": "p", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"}],
    "models": [{"name": "m", "deployments": [{"provider": "p", "model": "m"}]}],
    "auth": {"master_key": "sk-master-tracing-unit"},
    "ledger": {"enabled": False},
}

# Builds a worker's gateway as `gatecore serve` does, then reports what it loaded.
PROBE = """
import json, sys
from gatecore.config.load import load_config
from gatecore.worker import Worker
gateway = Worker(load_config(json.loads(sys.argv[1]), {}))
pool = gateway.pools.get(next(iter(gateway.providers.values())).pool.origin)
loaded = sorted({m.split(".")[1] for m in sys.modules if m.startswith("opentelemetry.")})
tracer = "gatecore.telemetry.tracing" in sys.modules
print(json.dumps([gateway.tracing is not None, type(pool).__name__, loaded, tracer]))
gateway.close()
"""


def probe(config: dict[str, Any], env: dict[str, str] | None = None) -> list[Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, **(env or {})},
    )
    result: list[Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_tracing_off_loads_no_opentelemetry() -> None:
    assert probe(CONFIG) == [False, "ConnectionPool", [], False]


def test_tracing_on_loads_it_in_the_worker() -> None:
    config = {
        **CONFIG,
        "telemetry": {"tracing": {"enabled": True, "endpoint": "http://127.0.0.1:9/v1/traces"}},
    }
    # Traces are made and exported by gatecore itself: no OpenTelemetry SDK is loaded either way.
    assert probe(config) == [True, "TracedConnectionPool", [], True]
    assert probe(config, {"OTEL_SDK_DISABLED": "false"})[0] is True


def test_otel_sdk_disabled_turns_configured_tracing_off() -> None:
    config = {
        **CONFIG,
        "telemetry": {"tracing": {"enabled": True, "endpoint": "http://127.0.0.1:9/v1/traces"}},
    }
    assert probe(config, {"OTEL_SDK_DISABLED": "TRUE"}) == [False, "ConnectionPool", [], False]


def test_tracing_settings_are_checked_with_their_paths() -> None:
    tracing = {
        "enabled": True,
        "endpoint": "collector:4318",
        "sample_ratio": 1.5,
        "service_name": " ",
        "headers": {"bad name": "x"},
        "timeout_s": 0,
        "max_queue_size": 10,
        "batch_size": 20,
        "schedule_delay_s": -1,
        "certificate": "/nonexistent/collector-ca.pem",
    }
    with pytest.raises(ConfigError) as info:
        load_config({**CONFIG, "telemetry": {"tracing": tracing}}, {})
    assert sorted(info.value.errors) == sorted(
        [
            "telemetry.tracing.endpoint: 'collector:4318' is not an http(s) URL",
            "telemetry.tracing.sample_ratio: must be between 0 and 1",
            "telemetry.tracing.service_name: must not be empty",
            "telemetry.tracing.headers: 'bad name' is not a header name",
            "telemetry.tracing.timeout_s: must be greater than 0",
            "telemetry.tracing.batch_size: must not exceed max_queue_size",
            "telemetry.tracing.schedule_delay_s: must be greater than 0",
            "telemetry.tracing.certificate: '/nonexistent/collector-ca.pem' is not a file",
        ]
    )
    with pytest.raises(ConfigError) as info:  # gzip or none, nothing else
        load_config({**CONFIG, "telemetry": {"tracing": {"enabled": True, "compression": "zstd"}}}, {})
    assert any("compression" in e for e in info.value.errors), info.value.errors
    with pytest.raises(ConfigError) as info:
        load_config({**CONFIG, "telemetry": {"tracing": {"enabled": True, "sampling": 0.5}}}, {})
    assert any("telemetry" in e and "sampling" in e for e in info.value.errors), info.value.errors


def test_the_endpoint_comes_from_the_config_then_the_otlp_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gatecore.telemetry.otlp_export import DEFAULT_ENDPOINT, exporter_endpoint

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert exporter_endpoint(None) == DEFAULT_ENDPOINT == "http://127.0.0.1:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    assert exporter_endpoint(None) == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:9999/in")
    assert exporter_endpoint(None) == "http://traces:9999/in"
    assert exporter_endpoint("http://configured:4318/v1/traces") == "http://configured:4318/v1/traces"


def test_export_headers_and_resource_come_from_the_otel_variables_then_the_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gatecore.telemetry.otlp_export import export_compression, export_headers
    from gatecore.telemetry.tracing import resource_attributes

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Api-Key=from%20env, x-tenant = t1 ,broken")
    assert export_headers({"x-tenant": "t2"}) == {"api-key": "from env", "x-tenant": "t2"}
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-only=traces")
    assert export_headers({}) == {"x-only": "traces"}  # the traces variable wins over the general one

    for name in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"):
        monkeypatch.delenv(name, raising=False)
    assert resource_attributes(None)["service.name"] == "gatecore"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,deployment.environment=prod%2Feu")
    resource = resource_attributes(None)
    assert resource["service.name"] == "from-attrs"
    assert resource["deployment.environment"] == "prod/eu"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-service-var")
    assert resource_attributes(None)["service.name"] == "from-service-var"
    assert resource_attributes("configured")["service.name"] == "configured"

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    assert export_compression(None) == "gzip"
    assert export_compression("none") == "none"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")  # not supported: sent uncompressed
    assert export_compression(None) == "none"
