"""`x-gatecore-timing`: a per-stage breakdown only for a client that asks (`x-gatecore-debug: timing`)
with a key allowed to see it (the master key, or a key whose metadata has `debug: true`)."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .admin_client import AdminClient
from .conftest import make_client
from .gateway import ALL_KEY, MASTER_KEY, Gateway, GatewayFactory, standard_config

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
ASK = {"x-gatecore-debug": "timing"}
STAGES = ["auth", "decode", "route", "limits", "upstream", "relay", "total"]


def stages(value: str) -> dict[str, float]:
    """`auth;dur=0.012, …` → {"auth": 0.012, …}, in order."""
    out: dict[str, float] = {}
    for part in value.split(","):
        name, _, dur = part.strip().partition(";dur=")
        out[name] = float(dur)
    return out


def check_breakdown(value: str, at_least_upstream_ms: float) -> dict[str, float]:
    timing = stages(value)
    assert list(timing) == STAGES
    assert all(d >= 0 for d in timing.values())
    assert sum(d for name, d in timing.items() if name != "total") <= timing["total"]
    assert timing["upstream"] >= at_least_upstream_ms
    return timing


@pytest.fixture
def gw(gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort) -> Gateway:
    return gateway_factory(standard_config(upstream.base_url, refused.base_url))


def chat(gw: Gateway, key: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
    with make_client(gw, key) as client:
        return client.chat.completions.with_raw_response.create(
            model="gpt-test", messages=HI, extra_headers=headers, **kwargs
        )


def test_master_key_gets_the_breakdown_buffered_and_streamed(gw: Gateway) -> None:
    raw = chat(gw, MASTER_KEY, ASK, extra_body={"mock": {"first_byte_delay_ms": 60}})
    timing = check_breakdown(raw.headers["x-gatecore-timing"], 55.0)
    # gatecore's own stages are small next to the upstream's 60 ms.
    assert timing["total"] - timing["upstream"] < 50
    assert raw.parse().choices[0].message.content

    # The stream is read before its client closes (a closed client's socket cannot be read).
    with make_client(gw, MASTER_KEY) as client:
        streamed = client.chat.completions.with_raw_response.create(
            model="gpt-test",
            messages=HI,
            extra_headers=ASK,
            stream=True,
            extra_body={"mock": {"first_byte_delay_ms": 30, "chunks": 3}},
        )
        check_breakdown(streamed.headers["x-gatecore-timing"], 25.0)
        assert "".join(chunk.choices[0].delta.content or "" for chunk in streamed.parse() if chunk.choices)


def test_no_header_unless_asked_and_allowed(gw: Gateway) -> None:
    assert "x-gatecore-timing" not in chat(gw, MASTER_KEY).headers
    assert "x-gatecore-timing" not in chat(gw, MASTER_KEY, {"x-gatecore-debug": "other"}).headers
    # A key without `debug: true` in its metadata asks in vain; the answer is otherwise the same.
    raw = chat(gw, ALL_KEY, ASK)
    assert "x-gatecore-timing" not in raw.headers
    assert "x-gatecore-overhead-ms" in raw.headers and raw.parse().choices
    # An error answer carries none either.
    with make_client(gw, MASTER_KEY) as client, pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="no-such-model", messages=HI, extra_headers=ASK)
    assert "x-gatecore-timing" not in info.value.response.headers


def test_a_key_with_debug_metadata_gets_it(gw: Gateway) -> None:
    admin = AdminClient(gw, MASTER_KEY)
    debug_key = admin.ok("POST", "/keys", {"name": "debugger", "metadata": {"debug": True}}, 201)["key"]
    plain_key = admin.ok("POST", "/keys", {"name": "plain", "metadata": {"debug": "yes"}}, 201)["key"]
    deadline = time.monotonic() + 10
    while True:  # stored keys reach the workers within store.poll_interval_s
        try:
            raw = chat(gw, debug_key, ASK)
            break
        except openai.AuthenticationError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    check_breakdown(raw.headers["x-gatecore-timing"], 0.0)
    assert "x-gatecore-timing" not in chat(gw, plain_key, ASK).headers
