"""A/B splits of a published prompt's label and its per-version figures (issue 21): a split within
tolerance over N calls, sticky per `user` and per request header, and per-version stats exact for
known traffic in the ledger, the stats route and /metrics."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream
from .admin_client import AdminClient
from .conftest import make_client
from .gateway import MASTER_KEY, Gateway, GatewayFactory
from .prometheus_text import Exposition, parse
from .prompt_helpers import call_prompt, prompts_config, template
from .test_metrics import scrape

CALLS = 200


def _publish_two(admin: AdminClient, name: str) -> None:
    admin.ok("POST", "/prompts", template(name, "one {{ topic }}"), 201)
    admin.ok("POST", "/prompts", template(name, "two {{ topic }}"), 201)


def test_split_within_tolerance_and_sticky(
    gateway_factory: GatewayFactory, upstream: MockUpstream, tmp_path: Any
) -> None:
    gw = gateway_factory(prompts_config(upstream, f"sqlite:///{tmp_path / 'store.db'}"))
    admin = AdminClient(gw, MASTER_KEY)
    _publish_two(admin, "ab")
    admin.ok("PUT", "/prompts/ab/labels/production", {"versions": {"1": 0.5, "2": 0.5}})
    with make_client(gw) as client:
        seen = Counter(call_prompt(client, "ab", {"variables": {"topic": "t"}})[1] for _ in range(CALLS))
        # Binomial(200, 0.5): sd ≈ 7.1, so ±35 is five of them.
        assert set(seen) == {1, 2} and abs(seen[1] - CALLS / 2) <= 35, seen
        # The answer is the version's: each version renders its own template.
        answer, version = call_prompt(client, "ab", {"variables": {"topic": "t"}})
        assert answer.choices[0].message.content == ("mock: one t" if version == 1 else "mock: two t")
        # Sticky per `user`: one user always gets one version; across users both versions occur.
        admin.ok("PUT", "/prompts/ab/labels/production", {"versions": {"1": 0.5, "2": 0.5}, "sticky": "user"})
        per_user = {}
        for user in (f"user-{i}" for i in range(16)):
            got = {
                call_prompt(client, "ab", {"variables": {"topic": "t"}, "user": user})[1] for _ in range(5)
            }
            assert len(got) == 1, (user, got)
            per_user[user] = got.pop()
        assert set(per_user.values()) == {1, 2}
        # Sticky per request header, with uneven weights: a weight of 0 never runs.
        admin.ok(
            "PUT",
            "/prompts/ab/labels/canary",
            {"versions": {"1": 0, "2": 1}, "sticky": "header:x-session"},
        )
        for session in ("s1", "s2", "s3"):
            got = {
                call_prompt(
                    client,
                    "ab",
                    {"variables": {"topic": "t"}},
                    label="canary",
                    headers={"x-session": session},
                )[1]
                for _ in range(3)
            }
            assert got == {2}
    for bad in (
        {"versions": {"1": 0.5, "9": 0.5}},
        {"versions": {"x": 1}},
        {"versions": {"1": -1}},
        {"version": 1, "versions": {"1": 1}},
        {"versions": {"1": 1}, "sticky": "cookie"},
    ):
        status, _ = admin.call("PUT", "/prompts/ab/labels/production", bad)
        assert status in (400, 404), bad


def _wait_metrics(gw: Gateway, total: float) -> Exposition:
    deadline = time.monotonic() + 10
    while True:
        metrics = parse(scrape(gw)[2])
        if metrics.total("gatecore_prompt_requests_total") >= total or time.monotonic() > deadline:
            return metrics
        time.sleep(0.1)


def test_per_version_stats_are_exact(
    gateway_factory: GatewayFactory, upstream: MockUpstream, store_url: str
) -> None:
    gw = gateway_factory(prompts_config(upstream, store_url))
    admin = AdminClient(gw, MASTER_KEY)
    _publish_two(admin, "st")
    expected: dict[int, dict[str, int]] = {v: Counter() for v in (1, 2)}
    started = time.time()
    with make_client(gw) as client:
        for i in range(7):
            version = 1 if i < 3 else 2
            answer, got = call_prompt(client, "st", {"variables": {"topic": "x" * i}}, version=version)
            assert got == version and answer.usage is not None
            expected[version]["requests"] += 1
            expected[version]["input_tokens"] += answer.usage.prompt_tokens
            expected[version]["output_tokens"] += answer.usage.completion_tokens
        with pytest.raises(openai.BadRequestError):  # an error on version 2: a missing variable
            call_prompt(client, "st", {"variables": {}}, version=2)
        expected[2]["requests"] += 1
        expected[2]["errors"] += 1
    deadline = time.monotonic() + 10
    while True:
        stats = admin.ok("GET", f"/prompts/st/stats?from={started - 1:.3f}")["data"]
        if sum(s["requests"] for s in stats) == 8 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    by_version = {s["version"]: s for s in stats}
    for version, want in expected.items():
        got = by_version[version]
        assert got["requests"] == want["requests"] and got["errors"] == want["errors"]
        assert got["input_tokens"] == want["input_tokens"] and got["output_tokens"] == want["output_tokens"]
        price = (want["input_tokens"] * 1.0 + want["output_tokens"] * 2.0) / 1e6
        assert got["cost_usd"] == pytest.approx(price)
        assert got["latency_ms_mean"] > 0
    assert admin.ok("GET", f"/prompts/st/stats?from={time.time() + 60:.0f}")["data"] == []
    metrics = _wait_metrics(gw, 8)
    for version, want in expected.items():
        labels = {"prompt": "st", "version": str(version)}
        assert metrics.value("gatecore_prompt_requests_total", **labels, status_class="2xx") == (
            want["requests"] - want["errors"]
        )
        assert metrics.value("gatecore_prompt_requests_total", **labels, status_class="4xx") == want["errors"]
        assert (
            metrics.value("gatecore_prompt_tokens_total", **labels, gen_ai_token_type="input")
            == (want["input_tokens"])
        )
        assert metrics.value("gatecore_prompt_duration_seconds_count", **labels) == want["requests"]
