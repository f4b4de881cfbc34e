"""Retries and fallbacks: a failing deployment is invisible to an `openai` SDK client while another
answers; nothing is retried once the answer started; Retry-After is honoured within its cap; when every
attempt fails the client gets the last upstream answer, or 502/504 when no upstream answered."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ..upstreams.openai_mock import RefusedPort
from ..upstreams.replica_mock import Replica
from . import raw_http
from .anthropic_client import make_anthropic
from .conftest import make_client
from .gateway import MASTER_KEY, Gateway, running_gateway, write_config

FAST = {"connect": 2, "first_byte": 0.6, "idle": 2, "total": 10}
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]


def openai_provider(name: str, base_url: str) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": base_url, "api_key": "sk-up"}


def config(primary: str, secondary: str, refused: str) -> dict[str, Any]:
    # The breaker is off here so the tests' failures do not steer later tests (test_routing_breaker.py).
    return {
        "providers": [
            openai_provider("primary", primary),
            openai_provider("secondary", secondary),
            openai_provider("refused", refused),
        ],
        "models": [
            {
                "name": "pool",
                "timeouts": FAST,
                "deployments": [
                    {"provider": "primary", "model": "up-a"},
                    {"provider": "secondary", "model": "up-b", "priority": 1},
                ],
            },
            {"name": "solo", "timeouts": FAST, "deployments": [{"provider": "primary", "model": "up-a"}]},
            {
                "name": "with-fallback",
                "timeouts": FAST,
                "deployments": [{"provider": "primary", "model": "up-a"}],
                "fallbacks": ["backup"],
            },
            {"name": "backup", "timeouts": FAST, "deployments": [{"provider": "secondary", "model": "up-b"}]},
            {
                "name": "dead-pool",
                "timeouts": FAST,
                "deployments": [
                    {"provider": "primary", "model": "up-a"},
                    {"provider": "refused", "model": "up-c", "priority": 1},
                ],
            },
            {
                "name": "refused-first",
                "timeouts": FAST,
                "deployments": [
                    {"provider": "refused", "model": "up-c"},
                    {"provider": "secondary", "model": "up-b", "priority": 1},
                ],
            },
            {
                "name": "patient",
                "timeouts": FAST,
                "deployments": [{"provider": "primary", "model": "up-a"}],
                "retries": {"count": 2, "per_deployment": 3, "backoff_s": 0.01, "retry_after_max_s": 1.5},
            },
            {
                "name": "no-retry",
                "timeouts": FAST,
                "deployments": [
                    {"provider": "primary", "model": "up-a"},
                    {"provider": "secondary", "model": "up-b", "priority": 1},
                ],
                "retries": {"count": 0},
            },
        ],
        "auth": {"master_key": MASTER_KEY},
        "routing": {"breaker": {"enabled": False}},
    }


@pytest.fixture(scope="module")
def primary() -> Iterator[Replica]:
    with Replica() as replica:
        yield replica


@pytest.fixture(scope="module")
def secondary() -> Iterator[Replica]:
    with Replica() as replica:
        yield replica


@pytest.fixture(scope="module")
def gw(primary: Replica, secondary: Replica, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    refused = RefusedPort()
    workdir: Path = tmp_path_factory.mktemp("routing")
    cfg = config(primary.base_url, secondary.base_url, refused.base_url)
    try:
        with running_gateway(
            ["--config", str(write_config(cfg, workdir / "g.yaml"))], workdir, config=cfg
        ) as g:
            yield g
    finally:
        refused.close()


@pytest.fixture(autouse=True)
def fresh(primary: Replica, secondary: Replica) -> None:
    for replica in (primary, secondary):
        replica.clear()
        replica.steer = {}
        replica.script.clear()


def chat(gw: Gateway, model: str, **kwargs: Any) -> Any:
    with make_client(gw) as client:
        return client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES, **kwargs)


@pytest.mark.parametrize(
    "steer",
    [
        {"status": 500},
        {"status": 503},
        {"status": 429},
        {"first_byte_delay_ms": 3000},  # past the 0.6 s first-byte timeout
    ],
    ids=["500", "503", "429", "slow-first-byte"],
)
def test_failover_is_invisible(
    gw: Gateway, primary: Replica, secondary: Replica, steer: dict[str, Any]
) -> None:
    primary.steer = steer
    started = time.monotonic()
    raw = chat(gw, "pool")
    completion = raw.parse()
    assert completion.choices[0].message.content == "mock: hello there"
    assert completion.model == "pool"  # the client's name, whoever served
    assert raw.headers["x-gatecore-model"] == "secondary/up-b"
    assert raw.headers["x-gatecore-attempts"] == "2"
    assert primary.hits == 1
    assert secondary.hits == 1
    assert secondary.requests[0].body_json["model"] == "up-b"
    assert time.monotonic() - started < 3


def test_happy_path_one_attempt(gw: Gateway, primary: Replica, secondary: Replica) -> None:
    raw = chat(gw, "pool")
    assert raw.headers["x-gatecore-model"] == "primary/up-a"
    assert raw.headers["x-gatecore-attempts"] == "1"
    assert (primary.hits, secondary.hits) == (1, 0)


def test_failover_on_refused_connection(gw: Gateway, secondary: Replica) -> None:
    raw = chat(gw, "refused-first")
    assert raw.parse().choices[0].message.content == "mock: hello there"
    assert raw.headers["x-gatecore-model"] == "secondary/up-b"
    assert raw.headers["x-gatecore-attempts"] == "2"
    assert secondary.hits == 1


def test_streamed_failover(gw: Gateway, primary: Replica, secondary: Replica) -> None:
    primary.steer = {"status": 502}
    with (
        make_client(gw) as client,
        client.chat.completions.with_streaming_response.create(
            model="pool", messages=MESSAGES, stream=True
        ) as response,
    ):
        assert response.headers["x-gatecore-model"] == "secondary/up-b"
        assert response.headers["x-gatecore-attempts"] == "2"
        text = "".join(chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices)
    assert text == "mock: hello there"
    assert (primary.hits, secondary.hits) == (1, 1)


def test_fallback_model(gw: Gateway, primary: Replica, secondary: Replica) -> None:
    primary.steer = {"status": 500}
    raw = chat(gw, "with-fallback")
    assert raw.parse().model == "with-fallback"
    assert raw.headers["x-gatecore-model"] == "secondary/up-b"
    assert raw.headers["x-gatecore-attempts"] == "2"
    assert secondary.requests[0].body_json["model"] == "up-b"


def test_nothing_retried_after_the_stream_started(gw: Gateway, primary: Replica, secondary: Replica) -> None:
    primary.steer = {"cut_after": 3}
    body = json.dumps({"model": "pool", "messages": MESSAGES, "stream": True}).encode()
    headers = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
    result = raw_http.read_stream(gw.port, "/v1/chat/completions", body, headers, 8)
    assert result.status == 200
    payloads = [json.loads(e.data) for e in result.events]
    assert len(payloads) == 4  # three events relayed, then the error event
    assert "error" in payloads[-1]
    assert payloads[-1]["error"]["code"] == "upstream_stream_error"
    assert primary.hits == 1
    assert secondary.hits == 0


def test_every_attempt_fails_last_upstream_answer(gw: Gateway, primary: Replica) -> None:
    # The primary answers 503; the second deployment refuses the connection: the client gets the 503.
    primary.steer = {"status": 503, "error": {"message": "primary is overloaded", "type": "server_error"}}
    with make_client(gw) as client, pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="dead-pool", messages=MESSAGES)
    assert info.value.status_code == 503
    assert "primary is overloaded" in info.value.message
    assert info.value.response.headers["x-gatecore-attempts"] == "2"
    assert primary.hits == 1


def test_no_upstream_answered_timeout_is_504(gw: Gateway, primary: Replica) -> None:
    primary.steer = {"hang": True}
    with make_client(gw) as client, pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="dead-pool", messages=MESSAGES)
    # The refused deployment was the last attempt: a connection error, after a timeout: no answer.
    assert info.value.status_code == 502
    primary.steer = {"hang": True}
    with make_client(gw) as client, pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="solo", messages=MESSAGES)
    assert info.value.status_code == 504


def test_retry_count_zero_answers_the_first_failure(
    gw: Gateway, primary: Replica, secondary: Replica
) -> None:
    primary.steer = {"status": 500}
    with make_client(gw) as client, pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="no-retry", messages=MESSAGES)
    assert info.value.status_code == 500
    assert (primary.hits, secondary.hits) == (1, 0)


def test_retry_after_is_waited_out(gw: Gateway, primary: Replica) -> None:
    primary.script.append({"status": 429, "headers": {"Retry-After": "1"}})
    started = time.monotonic()
    raw = chat(gw, "patient")
    elapsed = time.monotonic() - started
    assert raw.parse().choices[0].message.content == "mock: hello there"
    assert raw.headers["x-gatecore-attempts"] == "2"
    assert primary.hits == 2
    assert 0.95 <= elapsed < 3
    gap = primary.requests[1].received_at - primary.requests[0].received_at
    assert gap >= 0.95


def test_retry_after_ms_is_waited_out(gw: Gateway, primary: Replica) -> None:
    primary.script.append({"status": 503, "headers": {"retry-after-ms": "400"}})
    raw = chat(gw, "patient")
    assert raw.headers["x-gatecore-attempts"] == "2"
    gap = primary.requests[1].received_at - primary.requests[0].received_at
    assert 0.35 <= gap < 1.5


def test_retry_after_past_the_cap_is_not_waited(gw: Gateway, primary: Replica) -> None:
    primary.steer = {"status": 429, "headers": {"Retry-After": "30"}}
    started = time.monotonic()
    with make_client(gw) as client, pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="patient", messages=MESSAGES)
    assert info.value.status_code == 429
    assert time.monotonic() - started < 1.0
    assert primary.hits == 1


def test_backoff_between_attempts_on_one_deployment(gw: Gateway, primary: Replica) -> None:
    primary.script.extend([{"status": 500}, {"status": 500}])
    raw = chat(gw, "patient")
    assert raw.headers["x-gatecore-attempts"] == "3"
    assert primary.hits == 3


def test_anthropic_client_failover_and_last_error(gw: Gateway, primary: Replica, secondary: Replica) -> None:
    primary.steer = {"status": 500}
    with make_anthropic(gw) as client:
        raw = client.messages.with_raw_response.create(
            model="pool", max_tokens=50, messages=[{"role": "user", "content": "hello there"}]
        )
        message = raw.parse()
        assert message.content[0].type == "text"
        assert message.content[0].text == "mock: hello there"
        assert raw.headers["x-gatecore-model"] == "secondary/up-b"
        assert raw.headers["x-gatecore-attempts"] == "2"
        # Every attempt fails: the last upstream answer (503 from the primary; the second deployment
        # refused the connection) in Anthropic's error shape.
        primary.steer = {"status": 503}
        with pytest.raises(anthropic.APIStatusError) as info:
            client.messages.create(
                model="dead-pool", max_tokens=50, messages=[{"role": "user", "content": "hello there"}]
            )
    assert info.value.status_code == 503
    body = info.value.response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] in {"api_error", "overloaded_error"}


def test_stream_broken_before_its_first_event_is_retried(
    gw: Gateway, primary: Replica, secondary: Replica
) -> None:
    # The primary answers 200 and its event-stream head, then resets the connection before any event.
    primary.steer = {"cut_after": 0}
    with (
        make_client(gw) as client,
        client.chat.completions.with_streaming_response.create(
            model="pool", messages=MESSAGES, stream=True
        ) as response,
    ):
        assert response.headers["x-gatecore-model"] == "secondary/up-b"
        assert response.headers["x-gatecore-attempts"] == "2"
        text = "".join(chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices)
    assert text == "mock: hello there"
    assert (primary.hits, secondary.hits) == (1, 1)


def test_every_stream_broken_before_its_first_event_is_a_502(gw: Gateway, primary: Replica) -> None:
    # Nothing reached the client: it gets a plain error answer, not a 200 stream ending in an error.
    primary.steer = {"cut_after": 0}
    with make_client(gw) as client, pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="solo", messages=MESSAGES, stream=True)
    assert info.value.status_code == 502
    assert "before its first event" in info.value.message
    with make_anthropic(gw) as client, pytest.raises(anthropic.APIStatusError) as failure:
        client.messages.create(
            model="solo", max_tokens=20, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    assert failure.value.status_code == 502
    assert failure.value.response.json()["type"] == "error"
