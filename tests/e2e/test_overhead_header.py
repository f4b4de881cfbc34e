"""`x-gatecore-overhead-ms` on every inference answer: successes, streams, gatecore's own refusals and
upstream failures, on the OpenAI and Anthropic routes; and it is gatecore's time only, never the
upstream's (a timed-out or retried attempt's wait is not overhead)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from ..upstreams.replica_mock import Replica
from .anthropic_client import make_anthropic, post_raw
from .conftest import make_client
from .gateway import MASTER_KEY, GatewayFactory, standard_config
from .test_metrics import ONE_RPM_KEY

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "overhead"}]
HEADER = "x-gatecore-overhead-ms"


def overhead(headers: Any) -> float:
    value = float(headers[HEADER])
    assert value >= 0
    return value


@pytest.fixture
def replicas() -> Iterator[tuple[Replica, Replica]]:
    with Replica() as primary, Replica() as secondary:
        yield primary, secondary


def test_every_error_answer_carries_it(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    config = standard_config(upstream.base_url, refused.base_url)
    config["auth"]["keys"].append({"key": ONE_RPM_KEY, "name": "one-rpm", "rpm": 1})
    gw = gateway_factory(config)

    def failed(expected: int, key: str = MASTER_KEY, **kwargs: Any) -> float:
        with make_client(gw, key) as client, pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(messages=MESSAGES, **{"model": "gpt-test", **kwargs})
        assert info.value.status_code == expected
        return overhead(info.value.response.headers)

    failed(401, key="sk-unknown-key-0000")
    failed(404, model="no-such-model")
    failed(400, extra_body={"max_tokens": "many"})
    with make_client(gw, ONE_RPM_KEY) as client:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    failed(429, key=ONE_RPM_KEY)
    failed(500, extra_body={"mock": {"status": 500}})
    failed(502, model="gpt-refused")
    # A first-byte timeout (1 s): the second spent waiting was the upstream's, not gatecore's.
    started = time.monotonic()
    assert failed(504, extra_body={"mock": {"first_byte_delay_ms": 1500}}) < 250
    assert time.monotonic() - started >= 1.0
    # The Anthropic route's errors, in its own shape, carry it too.
    with make_anthropic(gw) as claude, pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(
            model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    overhead(caught.value.response.headers)
    status, headers, _ = post_raw(gw, b'{"model": "gpt-test", "max_tokens": 8, "messages": "nope"}')
    assert status == 400
    overhead(headers)


def test_successes_and_streams_carry_it(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    gw = gateway_factory(standard_config(upstream.base_url, refused.base_url))
    with make_client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-test", messages=MESSAGES, extra_body={"mock": {"first_byte_delay_ms": 300}}
        )
        assert overhead(raw.headers) < 200  # the upstream's 300 ms are not in it
        with client.chat.completions.with_streaming_response.create(
            model="gpt-test",
            messages=MESSAGES,
            stream=True,
            extra_body={"mock": {"first_byte_delay_ms": 300}},
        ) as response:
            assert overhead(response.headers) < 200
            assert list(response.parse())
        embedded = client.embeddings.with_raw_response.create(model="embed-test", input="x")
        overhead(embedded.headers)
    with make_anthropic(gw) as claude:
        message = claude.messages.with_raw_response.create(
            model="gpt-test", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
        overhead(message.headers)


def test_a_retried_attempt_is_the_upstreams_time(
    gateway_factory: GatewayFactory, replicas: tuple[Replica, Replica]
) -> None:
    primary, secondary = replicas
    gw = gateway_factory(
        {
            "providers": [
                {"name": "primary", "kind": "openai", "base_url": primary.base_url, "api_key": "sk-up"},
                {"name": "secondary", "kind": "openai", "base_url": secondary.base_url, "api_key": "sk-up"},
            ],
            "models": [
                {
                    "name": "pair",
                    "timeouts": {"connect": 2, "first_byte": 0.5, "idle": 5, "total": 20},
                    "deployments": [
                        {"provider": "primary", "model": "a"},
                        {"provider": "secondary", "model": "b", "priority": 1},
                    ],
                }
            ],
            "auth": {"master_key": MASTER_KEY},
        }
    )
    primary.steer = {"first_byte_delay_ms": 1500}
    secondary.steer = {"first_byte_delay_ms": 100}
    started = time.monotonic()
    with make_client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(model="pair", messages=MESSAGES)
    assert time.monotonic() - started >= 0.6
    assert raw.headers["x-gatecore-attempts"] == "2" and raw.headers["x-gatecore-model"] == "secondary/b"
    # The timed-out first attempt (0.5 s) and the second's 100 ms are the upstreams' time.
    assert overhead(raw.headers) < 80
