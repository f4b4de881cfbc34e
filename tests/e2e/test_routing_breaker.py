"""Circuit breakers: a deployment that keeps failing is skipped (the upstream is no longer hit), probed
again after its cooldown, and closed when it answers; its state shows at GET /admin/v1/deployments."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ..upstreams.replica_mock import Replica
from .admin_client import AdminClient
from .conftest import make_client
from .gateway import MASTER_KEY, Gateway, GatewayFactory

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
COOLDOWN_S = 1.0


@pytest.fixture
def replicas() -> Iterator[tuple[Replica, Replica]]:
    with Replica() as primary, Replica() as secondary:
        yield primary, secondary


def start(factory: GatewayFactory, primary: Replica, secondary: Replica, **breaker: Any) -> Gateway:
    timeouts = {"connect": 2, "first_byte": 2, "idle": 2, "total": 10}
    return factory(
        {
            "providers": [
                {"name": "primary", "kind": "openai", "base_url": primary.base_url, "api_key": "sk-up"},
                {"name": "secondary", "kind": "openai", "base_url": secondary.base_url, "api_key": "sk-up"},
            ],
            "models": [
                {
                    "name": "pool",
                    "timeouts": timeouts,
                    "deployments": [
                        {"provider": "primary", "model": "up-a"},
                        {"provider": "secondary", "model": "up-b", "priority": 1},
                    ],
                }
            ],
            "auth": {"master_key": MASTER_KEY},
            "routing": {"breaker": {"cooldown_s": COOLDOWN_S, **breaker}},
        }
    )


def served_by(gw: Gateway) -> tuple[str, str]:
    with make_client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(model="pool", messages=MESSAGES)
    assert raw.parse().choices[0].message.content == "mock: hi"
    return raw.headers["x-gatecore-model"], raw.headers["x-gatecore-attempts"]


def primary_state(gw: Gateway) -> dict[str, Any]:
    answer = AdminClient(gw, MASTER_KEY).ok("GET", "/deployments")
    (row,) = [r for r in answer["data"] if r["deployment"] == "primary/up-a"]
    assert isinstance(answer["worker_pid"], int)
    return row  # type: ignore[no-any-return]


def test_breaker_opens_half_opens_and_closes(
    gateway_factory: GatewayFactory, replicas: tuple[Replica, Replica]
) -> None:
    primary, secondary = replicas
    gw = start(gateway_factory, primary, secondary, failures=3)
    assert primary_state(gw)["state"] == "closed"
    primary.steer = {"status": 500}
    for _ in range(3):
        assert served_by(gw) == ("secondary/up-b", "2")
    assert primary.hits == 3
    state = primary_state(gw)
    assert state["state"] == "open"
    assert state["consecutive_failures"] == 3
    assert state["times_opened"] == 1
    assert 0 < state["retry_in_s"] <= COOLDOWN_S

    # Open: the primary is skipped, the client sees one attempt.
    for _ in range(5):
        assert served_by(gw) == ("secondary/up-b", "1")
    assert primary.hits == 3

    # After the cooldown one probe goes to the still failing primary, which opens it again.
    time.sleep(COOLDOWN_S + 0.1)
    assert served_by(gw) == ("secondary/up-b", "2")
    assert primary.hits == 4
    assert served_by(gw) == ("secondary/up-b", "1")
    assert primary.hits == 4
    assert primary_state(gw)["times_opened"] == 2

    # The upstream recovers: the next probe succeeds and closes the breaker.
    primary.steer = {}
    time.sleep(COOLDOWN_S + 0.1)
    assert served_by(gw) == ("primary/up-a", "1")
    state = primary_state(gw)
    assert state["state"] == "closed"
    assert state["consecutive_failures"] == 0
    for _ in range(3):
        assert served_by(gw) == ("primary/up-a", "1")
    assert primary.hits == 8


def test_breaker_opens_on_error_rate(
    gateway_factory: GatewayFactory, replicas: tuple[Replica, Replica]
) -> None:
    primary, secondary = replicas
    gw = start(gateway_factory, primary, secondary, failures=100, error_rate=0.5, min_requests=5, window_s=30)
    # Failures alternate with successes: never two in a row, but half of the traffic fails.
    primary.script.extend([{"status": 502}, {}, {"status": 502}, {}, {"status": 502}])
    served = [served_by(gw)[0] for _ in range(5)]
    assert served == ["secondary/up-b", "primary/up-a"] * 2 + ["secondary/up-b"]
    state = primary_state(gw)
    assert state["state"] == "open"
    assert state["consecutive_failures"] == 1
    assert (state["successes"], state["failures"]) == (2, 3)
    assert served_by(gw) == ("secondary/up-b", "1")
    assert primary.hits == 5


def test_every_breaker_open_still_routes(
    gateway_factory: GatewayFactory, replicas: tuple[Replica, Replica]
) -> None:
    # With no deployment available the request still goes out (panic routing): the client gets the
    # upstream's own answer, not an error the gateway made up.
    primary, secondary = replicas
    gw = start(gateway_factory, primary, secondary, failures=1)
    primary.steer = secondary.steer = {"status": 503}
    with make_client(gw) as client:
        for _ in range(3):
            with pytest.raises(openai.InternalServerError) as info:
                client.chat.completions.create(model="pool", messages=MESSAGES)
            assert info.value.status_code == 503
            assert "mock upstream error 503" in info.value.message
    assert primary.hits + secondary.hits >= 4


def until_answered(client: AdminClient, status: int) -> Any:
    """GET /deployments until it answers `status` (a new key reaches the workers within a poll)."""
    deadline = time.monotonic() + 5
    while True:
        got, body = client.call("GET", "/deployments")
        if got == status or time.monotonic() > deadline:
            assert got == status, body
            return body
        time.sleep(0.05)


def test_deployments_admin_roles(gateway_factory: GatewayFactory, replicas: tuple[Replica, Replica]) -> None:
    primary, secondary = replicas
    gw = start(gateway_factory, primary, secondary)
    admin = AdminClient(gw, MASTER_KEY)
    viewer = admin.ok("POST", "/keys", {"name": "viewer", "role": "viewer"}, 201)
    inference = admin.ok("POST", "/keys", {"name": "plain"}, 201)
    rows = until_answered(AdminClient(gw, viewer["key"]), 200)["data"]
    assert [(r["model"], r["deployment"], r["priority"], r["state"]) for r in rows] == [
        ("pool", "primary/up-a", 0, "closed"),
        ("pool", "secondary/up-b", 1, "closed"),
    ]
    body = until_answered(AdminClient(gw, inference["key"]), 403)
    assert body["error"]["type"] == "permission_error"
    status, _ = AdminClient(gw, None).call("GET", "/deployments")
    assert status == 401


def test_retry_after_holds_the_deployment_for_other_requests(
    gateway_factory: GatewayFactory, replicas: tuple[Replica, Replica]
) -> None:
    primary, secondary = replicas
    gw = start(gateway_factory, primary, secondary)
    primary.script.append({"status": 429, "headers": {"Retry-After": "1"}})
    assert served_by(gw) == ("secondary/up-b", "2")
    # Within the second the primary asked for, later requests go straight to the secondary.
    assert served_by(gw) == ("secondary/up-b", "1")
    assert primary.hits == 1
    state = primary_state(gw)
    assert state["state"] == "closed"
    assert 0 < state["retry_in_s"] <= 1
    time.sleep(1.1)
    assert served_by(gw) == ("primary/up-a", "1")
    assert primary_state(gw)["retry_in_s"] == 0
