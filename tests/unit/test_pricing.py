"""The price book: table lookup (exact, longest prefix, vendor by provider kind), config overrides,
token arithmetic, and the GPU clock's shares."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gatecore._core import CounterTable
from gatecore.config import load_config
from gatecore.pricing import GpuMeter, price_table, table_price
from gatecore.request import CHAT, RequestContext, Usage
from gatecore.worker import Worker


def test_exact_name_wins_over_prefix() -> None:
    price = table_price("openai", "gpt-4o-mini")
    assert price is not None
    assert (price.input_per_1m, price.output_per_1m) == price_table.OPENAI["gpt-4o-mini"][:2]
    assert price.source == "table:openai:gpt-4o-mini"


def test_dated_snapshot_takes_the_longest_prefix() -> None:
    price = table_price("openai", "gpt-4o-mini-2024-07-18")
    assert price is not None and price.source == "table:openai:gpt-4o-mini"
    price = table_price("anthropic", "claude-3-5-haiku-20241022")
    assert price is not None and price.source == "table:anthropic:claude-3-5-haiku"


def test_vendor_follows_the_provider_kind() -> None:
    assert table_price("azure", "gpt-4o") is not None  # Azure OpenAI uses OpenAI's names
    assert table_price("anthropic", "gpt-4o") is None
    assert table_price("ollama", "llama3.1") is None  # local engines have no list price
    assert table_price("openai", "meta-llama/Llama-3.1-8B-Instruct") is None  # vLLM: unknown, free


def test_bedrock_inference_profile_prefix_is_dropped() -> None:
    plain = table_price("bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0")
    profile = table_price("bedrock", "us.anthropic.claude-3-5-sonnet-20240620-v1:0")
    assert plain is not None and profile is not None
    assert profile.source == plain.source == "table:bedrock:anthropic.claude-3-5-sonnet"


def test_every_table_entry_is_a_sane_price() -> None:
    assert price_table.VERSION and price_table.AS_OF
    for table in price_table.TABLES.values():
        for name, (input_usd, output_usd, cached_usd) in table.items():
            assert name and input_usd >= 0 and output_usd >= 0, name
            assert cached_usd is None or 0 <= cached_usd <= input_usd, name


def test_tokens_cost_splits_cached_input() -> None:
    price = table_price("openai", "gpt-4o")
    assert price is not None
    # 1000 prompt tokens of which 400 cached, 200 output.
    expected = (600 * 2.50 + 400 * 1.25 + 200 * 10.00) / 1e6
    assert price.tokens_usd(1000, 200, 400) == pytest.approx(expected, rel=1e-12)


def _gateway(deployments: list[dict[str, Any]], kind: str = "openai") -> Worker:
    provider: dict[str, Any] = {"name": "p", "kind": kind, "api_key": "x"}
    if kind == "openai":
        provider["base_url"] = "http://127.0.0.1:9/v1"
    config = load_config(
        {
            "providers": [provider],
            "models": [{"name": "m", "deployments": deployments}],
            "ledger": {"enabled": False},  # prices only: no store needed
            "auth": {"unauthenticated": "loopback"},
        },
        {},
    )
    return Worker(config)


def _ctx(gateway: Worker, usage: Usage | None, upstream_model: str | None = None) -> RequestContext:
    ctx = RequestContext(CHAT, "r1", b"", 0)
    route = gateway.routes.find("m")
    assert route is not None
    deployment = ctx.deployment = route.deployments[0]
    ctx.upstream_model = upstream_model or deployment.model
    ctx.usage = usage
    return ctx


def test_config_override_replaces_the_table_price() -> None:
    pricing = {"input_per_1m": 1.0, "output_per_1m": 3.0, "cached_input_per_1m": 0.5}
    gateway = _gateway([{"provider": "p", "model": "gpt-4o", "pricing": pricing}])
    ctx = _ctx(gateway, Usage(1000, 100, 200))
    assert gateway.prices.cost_usd(ctx) == pytest.approx((800 * 1.0 + 200 * 0.5 + 100 * 3.0) / 1e6)
    assert gateway.prices.estimate_usd(ctx, 1000, 500) == pytest.approx((1000 * 1.0 + 500 * 3.0) / 1e6)


def test_partial_override_keeps_the_table_for_the_rest() -> None:
    gateway = _gateway([{"provider": "p", "model": "gpt-4o", "pricing": {"output_per_1m": 4.0}}])
    price = gateway.prices.price_of(gateway.routes.exact["m"].deployments[0], "gpt-4o")
    assert price is not None
    assert (price.input_per_1m, price.output_per_1m, price.cached_input_per_1m) == (2.50, 4.0, 1.25)


def test_wildcard_deployment_prices_each_upstream_model() -> None:
    provider = {"name": "p", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "x"}
    config = load_config(
        {
            "providers": [provider],
            "models": [{"name": "openai/*", "deployments": [{"provider": "p", "model": "*"}]}],
            "ledger": {"enabled": False},
            "auth": {"unauthenticated": "loopback"},
        },
        {},
    )
    gateway = Worker(config)
    deployment = gateway.routes.wildcards[0].deployments[0]
    mini = gateway.prices.price_of(deployment, "gpt-4o-mini")
    big = gateway.prices.price_of(deployment, "gpt-4o")
    assert mini is not None and big is not None and mini.input_per_1m < big.input_per_1m
    assert gateway.prices.price_of(deployment, "no-such-model") is None


def test_unknown_model_costs_nothing() -> None:
    gateway = _gateway([{"provider": "p", "model": "local-llama"}])
    assert gateway.prices.cost_usd(_ctx(gateway, Usage(1000, 1000))) == 0.0


def test_gpu_meter_splits_overlapping_requests() -> None:
    meter = GpuMeter(CounterTable(None, 64), "pool", gpu_hour_usd=3.6, gpus=2)  # 0.002 USD/s for the pool
    second = 1_000_000_000
    a = meter.begin(0)
    b = meter.begin(0)
    share_a = meter.end(a, 2 * second)  # both ran for 2 s side by side
    share_b = meter.end(b, 2 * second)
    assert share_a == pytest.approx(1.0) and share_b == pytest.approx(1.0)
    c = meter.begin(3 * second)  # alone for 1 s
    assert meter.end(c, 4 * second) == pytest.approx(1.0)
    # a staggered pair: d alone 1 s, together 1 s, e alone 1 s → each 1.5 s
    d = meter.begin(10 * second)
    e = meter.begin(11 * second)
    assert meter.end(d, 12 * second) == pytest.approx(1.5)
    assert meter.end(e, 13 * second) == pytest.approx(1.5)
    assert meter.in_flight == 0
    assert meter.usd_per_second == pytest.approx(0.002)


def test_gpu_priced_deployment_charges_its_share_once() -> None:
    pricing = {"gpu_hour_usd": 7.2, "gpus": 1}
    gateway = _gateway([{"provider": "p", "model": "llama", "pricing": pricing}])
    assert gateway.stage_names == ("auth", "decode", "route", "gpu_clock", "limits")
    ctx = _ctx(gateway, Usage(10, 10))
    stage = gateway.prices.clock_stage()
    assert stage is not None
    started_ns = time.perf_counter_ns()
    stage(ctx)
    assert ctx.gpu_mark is not None
    meter, _ = ctx.gpu_mark
    assert isinstance(meter, GpuMeter)
    assert meter.in_flight == 1
    ended_ns = time.perf_counter_ns() + 500_000_000  # at least 0.5 s alone
    cost = gateway.prices.cost_usd(ctx, ended_ns)
    # The clock started inside the stage, between started_ns and 0.5 s before ended_ns.
    usd_per_second = 7.2 / 3600
    assert 0.5 * usd_per_second <= cost <= (ended_ns - started_ns) / 1e9 * usd_per_second
    assert gateway.prices.cost_usd(ctx) == cost  # a second call does not stop the clock again
    assert meter.in_flight == 0


def test_gpu_and_token_prices_together_is_a_config_error() -> None:
    from gatecore.config import ConfigError

    with pytest.raises(ConfigError) as info:
        _gateway([{"provider": "p", "model": "x", "pricing": {"gpu_hour_usd": 1.0, "input_per_1m": 1.0}}])
    assert any("not both" in e for e in info.value.errors)
    with pytest.raises(ConfigError) as info:
        _gateway([{"provider": "p", "model": "x", "pricing": {"gpus": 0, "input_per_1m": -1.0}}])
    assert any("gpus" in e for e in info.value.errors)
    assert any("input_per_1m" in e for e in info.value.errors)
