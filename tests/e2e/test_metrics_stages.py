"""`gatecore_stage_duration_seconds` and `gatecore_deployment_state` on /metrics: known traffic through
the real server, then exact counts per stage and exact breaker states, with one worker and with two."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .conftest import make_client
from .gateway import STANDARD_MODELS, Gateway, GatewayFactory, standard_config
from .prometheus_text import Exposition, parse
from .test_metrics import ONE_RPM_KEY, scrape

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "stage timing"}]
STAGE = "gatecore_stage_duration_seconds"
STATE = "gatecore_deployment_state"
HELD_MODEL = "gpt-held"


def stages_config(upstream: MockUpstream, refused: RefusedPort, failures: int) -> dict[str, Any]:
    config = standard_config(upstream.base_url, refused.base_url)
    config["auth"]["keys"].append({"key": ONE_RPM_KEY, "name": "one-rpm", "rpm": 1})
    # A breaker opens after `failures` consecutive failures and stays open for the whole test.
    config["routing"] = {"breaker": {"failures": failures, "cooldown_s": 60}}
    config["models"].append(
        {"name": HELD_MODEL, "deployments": [{"provider": "up", "model": "upstream-model-1"}]}
    )
    return config


def send(gw: Gateway, ok: int, refused: int) -> set[str]:
    """`ok` chats and a stream on gpt-test, two upstream 500s, a 429 from the limits stage, a 404 from
    the route stage, a 401 from auth and `refused` 502s on gpt-refused, each on its own connection.
    Returns the request-id prefixes (one per worker process) that served the 502s."""
    for _ in range(ok):
        with make_client(gw) as client:
            client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    with make_client(gw) as client:
        assert list(client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True))
    for _ in range(2):
        with make_client(gw) as client, pytest.raises(openai.InternalServerError):
            client.chat.completions.create(
                model="gpt-test", messages=MESSAGES, extra_body={"mock": {"status": 500}}
            )
    with make_client(gw, ONE_RPM_KEY) as client:
        client.chat.completions.create(model="gpt-other", messages=MESSAGES)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-other", messages=MESSAGES)
    with make_client(gw) as client, pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    with make_client(gw, "sk-not-a-key-1234") as client, pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    workers: set[str] = set()
    for _ in range(refused):
        with make_client(gw) as client, pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="gpt-refused", messages=MESSAGES)
        assert info.value.status_code == 502
        workers.add(info.value.response.headers["x-request-id"][:16])  # req_ + the process's 12 hex
    return workers


def counted(gw: Gateway, total: int) -> Exposition:
    deadline = time.monotonic() + 10
    while True:
        metrics = parse(scrape(gw)[2])
        if metrics.total("gatecore_requests_total") == total or time.monotonic() > deadline:
            return metrics
        time.sleep(0.1)


def check_stages(metrics: Exposition, ok: int, refused: int, held: int = 0) -> None:
    """The counts of `send(ok, refused)` plus `held` upstream 429s."""
    requests = ok + 1 + 2 + 2 + 1 + 1 + refused + held
    assert metrics.total("gatecore_requests_total") == requests
    count = {
        name: metrics.value(f"{STAGE}_count", stage=name)
        for name in ("auth", "decode", "route", "limits", "upstream_connect", "relay")
    }
    # Every request but the 401 got through auth and decoding; the 404 stopped at route, the 429 at
    # limits. Those through every stage were relayed (502s included: their error is rendered too);
    # those whose request was written upstream (not the refused ones) have a connect time.
    through = ok + 1 + 2 + 1 + refused + held
    assert count == {
        "auth": requests - 1,
        "decode": requests - 1,
        "route": requests - 2,
        "limits": requests - 3,
        "upstream_connect": through - refused,
        "relay": through,
    }
    assert metrics.types[STAGE] == "histogram"
    assert metrics.label_values("stage") == {"auth", "decode", "route", "limits", "upstream_connect", "relay"}
    for name, n in count.items():
        assert metrics.value(f"{STAGE}_bucket", stage=name, le="+Inf") == n
        assert 0 < metrics.value(f"{STAGE}_sum", stage=name) < n * 1.0  # under a second each
    # The stages and relay are parts of gatecore's overhead (connecting is the upstream's time).
    parts = sum(
        metrics.value(f"{STAGE}_sum", stage=s) for s in ("auth", "decode", "route", "limits", "relay")
    )
    assert parts <= metrics.total("gatecore_overhead_seconds_sum") + 1e-6


def states(metrics: Exposition, model: str, deployment: str) -> dict[str, float]:
    return {
        state: metrics.value(STATE, model=model, deployment=deployment, state=state)
        for state in ("closed", "open", "half_open", "held")
    }


@pytest.mark.timeout(90)
def test_stage_durations_and_breaker_states_count_known_traffic(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    gw = gateway_factory(stages_config(upstream, refused, failures=3))
    metrics = parse(scrape(gw)[2])
    assert metrics.types[STATE] == "gauge"
    for model in STANDARD_MODELS:  # every deployment is listed before any traffic: all closed
        (deployment,) = {
            dict(ls)["deployment"] for n, ls in metrics.samples if n == STATE and ("model", model) in ls
        }
        assert states(metrics, model, deployment) == {"closed": 1, "open": 0, "half_open": 0, "held": 0}
    assert metrics.value(f"{STAGE}_count", stage="auth") == 0

    send(gw, ok=5, refused=3)
    # An upstream's 429 with a long Retry-After holds its deployment without opening the breaker.
    with make_client(gw) as client, pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model=HELD_MODEL,
            messages=MESSAGES,
            extra_body={"mock": {"status": 429, "headers": {"Retry-After": "30"}}},
        )
    metrics = counted(gw, 16)
    check_stages(metrics, ok=5, refused=3, held=1)
    # Three consecutive connection failures opened gpt-refused's breaker; the 429 holds gpt-held.
    closed = {"closed": 1, "open": 0, "half_open": 0, "held": 0}
    assert states(metrics, "gpt-refused", "down/upstream-model-1") == {**closed, "closed": 0, "open": 1}
    assert states(metrics, HELD_MODEL, "up/upstream-model-1") == {**closed, "closed": 0, "held": 1}
    assert states(metrics, "gpt-test", "up/upstream-model-1") == closed


@pytest.mark.timeout(60)
def test_an_open_breaker_shows_half_open_once_its_cooldown_ends(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    config = stages_config(upstream, refused, failures=1)
    config["routing"]["breaker"]["cooldown_s"] = 0.5
    gw = gateway_factory(config)
    with make_client(gw) as client, pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="gpt-refused", messages=MESSAGES)
    closed = {"closed": 0, "open": 0, "half_open": 0, "held": 0}
    metrics = parse(scrape(gw)[2])
    assert states(metrics, "gpt-refused", "down/upstream-model-1") == {**closed, "open": 1}
    time.sleep(0.7)  # no request since: the state is read at scrape time
    metrics = parse(scrape(gw)[2])
    assert states(metrics, "gpt-refused", "down/upstream-model-1") == {**closed, "half_open": 1}


@pytest.mark.timeout(120)
def test_two_workers_add_up(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    gw = gateway_factory(stages_config(upstream, refused, failures=1), workers=2)
    # Until both workers have started, a scrape may see one: wait for both workers' breakers.
    deadline = time.monotonic() + 10
    while states(parse(scrape(gw)[2]), "gpt-test", "up/upstream-model-1")["closed"] != 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    opened = send(gw, ok=12, refused=6)
    time.sleep(0.8)  # each worker's figures reach the other's scrapes within metrics_flush_s
    for _ in range(4):  # whichever worker answers the scrape
        metrics = parse(scrape(gw)[2])
        check_stages(metrics, ok=12, refused=6)
        # One failure opens a worker's breaker: exactly the workers that served a 502 have it open.
        refused_states = states(metrics, "gpt-refused", "down/upstream-model-1")
        assert refused_states == {"closed": 2 - len(opened), "open": len(opened), "half_open": 0, "held": 0}
        for model in STANDARD_MODELS - {"gpt-refused"}:
            assert (
                sum(v for (n, ls), v in metrics.samples.items() if n == STATE and ("model", model) in ls) == 2
            )
        # gpt-other saw no failure (gpt-test's 500s opened its breaker where they were served).
        assert states(metrics, "gpt-other", "up/upstream-model-2")["closed"] == 2
