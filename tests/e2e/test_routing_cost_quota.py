"""Strategy lowest_cost (configured prices, the shipped price table, GPU-time pricing counted as free
at the margin, unknown prices last, ties in config order) and remaining-quota awareness (OpenAI's
`x-ratelimit-*` and Anthropic's `anthropic-ratelimit-*` heads hold a deployment until its reset)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..upstreams.anthropic_mock import API_KEY as ANTHROPIC_KEY
from ..upstreams.anthropic_mock import AnthropicMock
from ..upstreams.replica_mock import Replica
from .admin_client import AdminClient
from .conftest import make_client
from .gateway import MASTER_KEY, Gateway, running_gateway, write_config

TIMEOUTS = {"connect": 2, "first_byte": 5, "idle": 5, "total": 10}
CHEAPEST = {"strategy": "lowest_cost"}


def deployment(provider: str, model: str, **extra: Any) -> dict[str, Any]:
    return {"provider": provider, "model": model, **extra}


def model(name: str, *deployments: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "timeouts": TIMEOUTS, "deployments": list(deployments), **extra}


def priced(input_usd: float, output_usd: float) -> dict[str, Any]:
    return {"pricing": {"input_per_1m": input_usd, "output_per_1m": output_usd}}


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[Replica, Replica, Replica, AnthropicMock]]:
    with Replica() as a, Replica() as b, Replica() as c, AnthropicMock() as claude:
        yield a, b, c, claude


@pytest.fixture(scope="module")
def gw(
    upstreams: tuple[Replica, Replica, Replica, AnthropicMock], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    a, b, c, claude = upstreams
    cfg = {
        "providers": [
            *(
                {"name": name, "kind": "openai", "base_url": replica.base_url, "api_key": "sk-up"}
                for name, replica in (("a", a), ("b", b), ("c", c))
            ),
            {"name": "claude", "kind": "anthropic", "base_url": claude.origin, "api_key": ANTHROPIC_KEY},
        ],
        "models": [
            model(
                "cheap",
                deployment("a", "pricey", **priced(10, 30)),
                deployment("b", "mid", **priced(1, 2)),
                deployment("c", "budget", **priced(0.5, 1)),
                routing=CHEAPEST,
            ),
            # Prices from the shipped table: gpt-4o-mini costs less than gpt-4o.
            model("table", deployment("a", "gpt-4o"), deployment("b", "gpt-4o-mini"), routing=CHEAPEST),
            model(
                "gpu-first",
                deployment("a", "hosted", **priced(0.1, 0.1)),
                deployment("b", "local-llama", pricing={"gpu_hour_usd": 2.5, "gpus": 2}),
                routing=CHEAPEST,
            ),
            model(
                "ties-and-unknowns",
                deployment("a", "mystery-model"),
                deployment("b", "same-1", **priced(1, 1)),
                deployment("c", "same-2", **priced(1, 1)),
                routing=CHEAPEST,
            ),
            model(
                "quota",
                deployment("a", "qa"),
                deployment("b", "qb"),
                routing={"strategy": "round_robin", "quota": {"min_requests": 1, "min_tokens": 1000}},
            ),
            model("claude/*", deployment("claude", "*"), routing={"quota": {}}),
        ],
        "auth": {"master_key": MASTER_KEY},
        "routing": {"breaker": {"enabled": False}},
    }
    workdir: Path = tmp_path_factory.mktemp("cost-quota")
    with running_gateway(["--config", str(write_config(cfg, workdir / "g.yaml"))], workdir, config=cfg) as g:
        yield g


@pytest.fixture(autouse=True)
def fresh(upstreams: tuple[Replica, Replica, Replica, AnthropicMock]) -> None:
    for replica in upstreams[:3]:
        assert isinstance(replica, Replica)
        replica.clear()
        replica.steer = {}


def served_by(gw: Gateway, model: str) -> str:
    with make_client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=20
        )
    assert raw.parse().choices[0].message.content == "mock: hi"
    return str(raw.headers["x-gatecore-model"])


def rows(gw: Gateway, model: str) -> dict[str, dict[str, Any]]:
    answer = AdminClient(gw, MASTER_KEY).ok("GET", "/deployments")
    return {r["deployment"]: r for r in answer["data"] if r["model"] == model}


def test_lowest_cost_takes_the_cheapest_then_the_next(
    gw: Gateway, upstreams: tuple[Replica, Replica, Replica, AnthropicMock]
) -> None:
    a, b, c, _ = upstreams
    assert {served_by(gw, "cheap") for _ in range(5)} == {"c/budget"}
    c.steer = {"status": 500}
    with make_client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="cheap", messages=[{"role": "user", "content": "hi"}]
        )
    assert raw.headers["x-gatecore-model"] == "b/mid"  # the next cheapest, not the first configured
    assert raw.headers["x-gatecore-attempts"] == "2"
    assert (a.hits, b.hits, c.hits) == (0, 1, 6)
    costs = {name: row["cost_per_1m"] for name, row in rows(gw, "cheap").items()}
    assert costs == {"a/pricey": 15.0, "b/mid": 1.25, "c/budget": 0.625}  # (3 * input + output) / 4


def test_lowest_cost_from_the_price_table(gw: Gateway) -> None:
    assert {served_by(gw, "table") for _ in range(3)} == {"b/gpt-4o-mini"}


def test_gpu_time_pricing_counts_as_free_at_the_margin(gw: Gateway) -> None:
    assert {served_by(gw, "gpu-first") for _ in range(3)} == {"b/local-llama"}
    assert rows(gw, "gpu-first")["b/local-llama"]["cost_per_1m"] == 0.0


def test_ties_in_config_order_and_unknown_prices_last(gw: Gateway) -> None:
    assert {served_by(gw, "ties-and-unknowns") for _ in range(4)} == {"b/same-1"}
    assert rows(gw, "ties-and-unknowns")["a/mystery-model"]["cost_per_1m"] is None


def test_exhausted_request_quota_holds_the_deployment_until_its_reset(
    gw: Gateway, upstreams: tuple[Replica, Replica, Replica, AnthropicMock]
) -> None:
    a, _, _, _ = upstreams
    a.steer = {
        "headers": {
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1s",
            "x-ratelimit-remaining-tokens": "150000",
            "x-ratelimit-reset-tokens": "6m0s",
        }
    }
    # Round robin: within two requests one goes to a, which reports its quota used up.
    served = [served_by(gw, "quota") for _ in range(2)]
    assert "a/qa" in served
    held = rows(gw, "quota")["a/qa"]
    assert held["quota"]["remaining_requests"] == 0
    assert held["quota"]["remaining_tokens"] == 150000
    assert 0 < held["quota_hold_s"] <= 1.0
    started = time.monotonic()
    hits = a.hits
    after = [served_by(gw, "quota") for _ in range(4)]
    if time.monotonic() - started < 0.9:  # all within the hold (the machine may be slow)
        assert after == ["b/qb"] * 4
        assert a.hits == hits
    a.steer = {}
    time.sleep(max(0.0, 1.1 - (time.monotonic() - started)))
    assert "a/qa" in {served_by(gw, "quota") for _ in range(2)}  # back after its reset


def test_low_token_quota_holds_too(
    gw: Gateway, upstreams: tuple[Replica, Replica, Replica, AnthropicMock]
) -> None:
    a, _, _, _ = upstreams
    a.steer = {
        "headers": {
            "x-ratelimit-remaining-requests": "500",
            "x-ratelimit-remaining-tokens": "400",  # below the model's min_tokens of 1000
            "x-ratelimit-reset-tokens": "1.5s",
        }
    }
    for _ in range(2):
        served_by(gw, "quota")
    assert a.hits == 1
    row = rows(gw, "quota")["a/qa"]
    assert row["quota"]["remaining_tokens"] == 400
    assert row["quota"]["remaining_requests"] == 500
    assert 0 < row["quota_hold_s"] <= 1.5


def test_anthropic_rate_limit_heads(
    gw: Gateway, upstreams: tuple[Replica, Replica, Replica, AnthropicMock]
) -> None:
    with make_client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="claude/claude-mock~remaining=0~reset=3",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=20,
        )
        assert raw.parse().choices[0].message.content == "mock: hi"
        row = rows(gw, "claude/*")["claude/*"]
        assert row["quota"]["remaining_requests"] == 0
        assert row["quota"]["remaining_tokens"] == 99000
        # An RFC 3339 reset, to the second: between 2 and 3 seconds away.
        assert 1.0 < row["quota_hold_s"] <= 3.0
        # The only deployment, held: requests still go to it (nothing else could serve them).
        again = client.chat.completions.create(
            model="claude/claude-mock", messages=[{"role": "user", "content": "hi"}], max_tokens=20
        )
    assert again.choices[0].message.content == "mock: hi"
