"""Active health checks (`/health`, `/v1/models`, on by default for local engine kinds) and passive
outlier ejection (error rate or latency far above the rest of the pool): unhealthy or ejected
deployments are skipped while others can serve, and both states show at GET /admin/v1/deployments,
which the admin OpenAPI document describes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..upstreams.replica_mock import Replica
from ..upstreams.tgi_mock import TgiMock
from .admin_client import AdminClient
from .conftest import make_client
from .gateway import MASTER_KEY, Gateway, running_gateway, write_config

TIMEOUTS = {"connect": 1, "first_byte": 3, "idle": 3, "total": 10}
CHECK = {"path": "/health", "interval_s": 0.1, "timeout_s": 0.5, "unhealthy_after": 2, "healthy_after": 1}
RR = "round_robin"


def pool(name: str, *deployments: dict[str, Any], **routing: Any) -> dict[str, Any]:
    return {
        "name": name,
        "timeouts": TIMEOUTS,
        "deployments": list(deployments),
        "routing": {"strategy": RR, **routing},
    }


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[Replica, Replica, TgiMock]]:
    with Replica() as a, Replica() as b, TgiMock() as tgi:
        yield a, b, tgi


@pytest.fixture(scope="module")
def gw(
    upstreams: tuple[Replica, Replica, TgiMock], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    a, b, tgi = upstreams
    models_check = {**CHECK, "path": "/v1/models"}
    outliers = {"interval_s": 0.4, "min_requests": 3, "eject_s": 3}
    cfg = {
        "providers": [
            {"name": "a", "kind": "openai", "base_url": a.base_url, "api_key": "sk-up"},
            {"name": "b", "kind": "openai", "base_url": b.base_url, "api_key": "sk-up"},
            {"name": "tgi", "kind": "tgi", "base_url": tgi.base_url},
        ],
        "models": [
            pool(
                "checked",
                {"provider": "a", "model": "m-a", "health_check": CHECK},
                {"provider": "b", "model": "m-b", "health_check": CHECK},
            ),
            pool(
                "listed",
                {"provider": "a", "model": "upstream-model-1", "health_check": models_check},
                {"provider": "b", "model": "not-served-here", "health_check": models_check},
            ),
            {"name": "tgi", "timeouts": TIMEOUTS, "deployments": [{"provider": "tgi", "model": "tgi-model"}]},
            {
                "name": "unchecked",
                "timeouts": TIMEOUTS,
                "deployments": [{"provider": "a", "model": "m-plain"}],
            },
            pool(
                "flaky",
                {"provider": "a", "model": "flaky-a"},
                {"provider": "b", "model": "flaky-b"},
                outliers=outliers,
            ),
            pool(
                "sluggish",
                {"provider": "a", "model": "slow-a"},
                {"provider": "b", "model": "slow-b"},
                # Slow answers are few per interval: a longer one, fewer outcomes to judge by.
                outliers={
                    **outliers,
                    "interval_s": 1.0,
                    "min_requests": 2,
                    "latency_factor": 3.0,
                    "latency_min_s": 0.1,
                },
            ),
        ],
        "auth": {"master_key": MASTER_KEY},
        # Breakers off: what takes a deployment out here is the health check or the outlier detector.
        "routing": {"breaker": {"enabled": False}},
    }
    workdir: Path = tmp_path_factory.mktemp("health")
    with running_gateway(["--config", str(write_config(cfg, workdir / "g.yaml"))], workdir, config=cfg) as g:
        yield g


@pytest.fixture(autouse=True)
def fresh(upstreams: tuple[Replica, Replica, TgiMock]) -> None:
    for replica in upstreams[:2]:
        assert isinstance(replica, Replica)
        replica.clear()
        replica.steer = {}
        replica.health_status = 200


def served_by(gw: Gateway, model: str) -> str:
    with make_client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
    assert raw.parse().choices[0].message.content == "mock: hi"
    return str(raw.headers["x-gatecore-model"])


def rows(gw: Gateway, model: str) -> dict[str, dict[str, Any]]:
    answer = AdminClient(gw, MASTER_KEY).ok("GET", "/deployments")
    return {r["deployment"]: r for r in answer["data"] if r["model"] == model}


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the state did not change in time"
        time.sleep(0.05)


def test_failed_health_checks_take_a_deployment_out_until_it_recovers(
    gw: Gateway, upstreams: tuple[Replica, Replica, TgiMock]
) -> None:
    a, b, _ = upstreams
    eventually(lambda: rows(gw, "checked")["a/m-a"]["health"]["age_s"] is not None)
    assert rows(gw, "checked")["a/m-a"]["healthy"] is True
    a.health_status = 503
    eventually(lambda: rows(gw, "checked")["a/m-a"]["healthy"] is False)
    row = rows(gw, "checked")["a/m-a"]
    assert row["health"]["path"] == "/health"
    assert row["health"]["consecutive_failures"] >= 2
    assert row["health"]["last_error"] == "HTTP 503"
    assert [served_by(gw, "checked") for _ in range(4)] == ["b/m-b"] * 4
    assert a.hits == 0
    # Every deployment down: requests still go to the model's own (the upstream answers for itself).
    b.health_status = 503
    eventually(lambda: rows(gw, "checked")["b/m-b"]["healthy"] is False)
    assert served_by(gw, "checked") in {"a/m-a", "b/m-b"}
    a.health_status = b.health_status = 200
    eventually(lambda: all(r["healthy"] for r in rows(gw, "checked").values()))
    assert {served_by(gw, "checked") for _ in range(4)} == {"a/m-a", "b/m-b"}


def test_models_list_check_wants_the_deployments_model(
    gw: Gateway, upstreams: tuple[Replica, Replica, TgiMock]
) -> None:
    eventually(lambda: rows(gw, "listed")["b/not-served-here"]["healthy"] is False)
    found = rows(gw, "listed")
    assert found["a/upstream-model-1"]["healthy"] is True
    assert found["a/upstream-model-1"]["health"]["last_error"] is None
    assert (
        found["b/not-served-here"]["health"]["last_error"] == "the model list does not name not-served-here"
    )
    assert {served_by(gw, "listed") for _ in range(3)} == {"a/upstream-model-1"}
    # The check sent the provider's key, as a vLLM started with --api-key wants. The replica's
    # requests were cleared when this test began, and the lines above can take less than the check's
    # 0.1 s interval: wait for the next check rather than expect one already there.
    listing = upstreams[0].find(lambda r: r.method == "GET" and r.path == "/v1/models")
    assert listing.headers["authorization"] == "Bearer sk-up"


def test_local_engines_are_checked_by_default(
    gw: Gateway, upstreams: tuple[Replica, Replica, TgiMock]
) -> None:
    tgi = upstreams[2]
    eventually(lambda: tgi.health_hits > 0)
    row = rows(gw, "tgi")["tgi/tgi-model"]
    assert row["health"]["path"] == "/health" and row["healthy"] is True
    assert not tgi.requests  # checks are not inference requests
    unchecked = rows(gw, "unchecked")["a/m-plain"]
    assert unchecked["health"] is None and unchecked["healthy"] is True


def test_error_rate_outlier_is_ejected(gw: Gateway, upstreams: tuple[Replica, Replica, TgiMock]) -> None:
    a, _, _ = upstreams
    a.steer = {"status": 500}
    deadline = time.monotonic() + 5
    while rows(gw, "flaky")["a/flaky-a"]["ejected_for_s"] == 0:
        assert time.monotonic() < deadline, "never ejected"
        # Failover keeps every request answered (by b) while a fails.
        assert served_by(gw, "flaky") == "b/flaky-b"
    row = rows(gw, "flaky")["a/flaky-a"]
    assert row["times_ejected"] == 1 and 0 < row["ejected_for_s"] <= 3
    assert rows(gw, "flaky")["b/flaky-b"]["ejected_for_s"] == 0  # never more than half the pool
    hits = a.hits
    assert [served_by(gw, "flaky") for _ in range(4)] == ["b/flaky-b"] * 4
    assert a.hits == hits


def test_latency_outlier_is_ejected(gw: Gateway, upstreams: tuple[Replica, Replica, TgiMock]) -> None:
    a, _, _ = upstreams
    a.steer = {"first_byte_delay_ms": 300}
    deadline = time.monotonic() + 8
    while rows(gw, "sluggish")["a/slow-a"]["ejected_for_s"] == 0:
        assert time.monotonic() < deadline, "never ejected"
        served_by(gw, "sluggish")
    hits = a.hits
    assert [served_by(gw, "sluggish") for _ in range(4)] == ["b/slow-b"] * 4
    assert a.hits == hits
    assert rows(gw, "sluggish")["a/slow-a"]["times_ejected"] == 1


def test_openapi_document_describes_deployments(gw: Gateway) -> None:
    admin = AdminClient(gw, MASTER_KEY)
    document = admin.ok("GET", "/openapi.json")
    operation = document["paths"]["/deployments"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DeploymentsOut"
    }
    schemas = document["components"]["schemas"]
    listed = schemas["DeploymentsOut"]["properties"]["data"]["items"]["$ref"].rsplit("/", 1)[-1]
    described = schemas[listed]
    row = admin.ok("GET", "/deployments")["data"][0]
    # Every field the endpoint answers is described, and every required one is there.
    assert set(row) == set(described["properties"])
    assert set(described["required"]) <= set(row)
    for nested in ("HealthOut", "QuotaOut", "CapabilitiesOut", "EngineLoadOut"):
        assert nested in schemas


def test_new_routing_options_are_checked(tmp_path: Path) -> None:
    from .gateway import run_cli

    cfg = {
        "providers": [{"name": "a", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"}],
        "models": [
            {
                "name": "m",
                "deployments": [
                    {"provider": "a", "model": "x", "context_window": 0, "health_check": {"path": "health"}},
                    {"provider": "a", "model": "y", "health_check": {"interval_s": 0, "unhealthy_after": 0}},
                ],
                "context_fallbacks": ["nowhere"],
                "content_policy_fallbacks": ["elsewhere"],
                "routing": {
                    "strategy": "lowest_cost",
                    "quota": {"min_requests": -1},
                    "outliers": {"latency_factor": 1.0, "max_ejected": 0},
                },
            }
        ],
    }
    result = run_cli(["check", "--config", str(write_config(cfg, tmp_path / "bad.yaml"))])
    assert result.returncode != 0
    out = result.stdout + result.stderr
    for expected in (
        "models[0].deployments[0].context_window: must be at least 1 token",
        "models[0].deployments[0].health_check.path: must start with '/'",
        "models[0].deployments[1].health_check.interval_s: must be greater than 0",
        "models[0].deployments[1].health_check.unhealthy_after: must be at least 1",
        "models[0].context_fallbacks[0]: unknown model 'nowhere'",
        "models[0].content_policy_fallbacks[0]: unknown model 'elsewhere'",
        "models[0].routing.quota.min_requests: must be 0 or more",
        "models[0].routing.outliers.latency_factor: must be greater than 1",
        "models[0].routing.outliers.max_ejected: must be greater than 0 and at most 1",
    ):
        assert expected in out, out
    assert "strategy" not in out  # lowest_cost is a known strategy
