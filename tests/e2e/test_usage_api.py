"""The usage report (`GET /admin/v1/usage`, `gatecore usage`) over real traffic, on SQLite and a real
PostgreSQL: exact totals per key, team, user, model, deployment and day; time filters; CSV; roles."""

from __future__ import annotations

import asyncio
import csv
import http.client
import io
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import openai
import pytest

from gatecore.ledger.repository import LedgerRepository
from gatecore.store import open_store

from ..upstreams.openai_mock import MockUpstream
from .admin_client import AdminClient
from .conftest import make_client, wait_keys_loaded
from .gateway import MASTER_KEY, Gateway, GatewayFactory, run_cli, write_config

PRICES = {
    "gpt-a": {"input_per_1m": 1.0, "output_per_1m": 2.0},
    "gpt-b": {"input_per_1m": 3.0, "output_per_1m": 5.0},
}
FIELDS = ("requests", "input_tokens", "output_tokens", "cached_tokens", "errors")


def usage_config(upstream: MockUpstream, store_url: str) -> dict[str, Any]:
    return {
        "providers": [
            {"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "${UP_KEY}"}
        ],
        "models": [
            {"name": name, "deployments": [{"provider": "up", "model": f"up-{name}", "pricing": price}]}
            for name, price in PRICES.items()
        ],
        "auth": {"master_key": MASTER_KEY, "key_hash_secret": "usage-hash-secret-0123456789"},
        "store": {"url": store_url},
        "ledger": {"flush_interval_s": 0.05},
    }


class Traffic:
    """What the test sent, to compute the expected report: one record per request."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.records: list[dict[str, Any]] = []
        self.config = config or {}  # the gateway's config (the CLI reads the same store)

    def expected(self, field: str) -> dict[Any, dict[str, Any]]:
        totals: dict[Any, dict[str, Any]] = defaultdict(lambda: dict.fromkeys((*FIELDS, "cost_usd"), 0))
        for record in self.records:
            total = totals[record[field]]
            total["requests"] += 1
            total["input_tokens"] += record["input_tokens"]
            total["output_tokens"] += record["output_tokens"]
            total["errors"] += record["error"]
            total["cost_usd"] += record["cost_usd"]
        return dict(totals)


@pytest.fixture
def setup(
    gateway_factory: GatewayFactory, upstream: MockUpstream, store_url: str
) -> Iterator[tuple[Gateway, dict[str, Any], Traffic]]:
    config = usage_config(upstream, store_url)
    gw = gateway_factory(config)
    admin = AdminClient(gw, MASTER_KEY)
    admin.ok("POST", "/teams", {"name": "red"}, 201)
    admin.ok("POST", "/teams", {"name": "blue"}, 201)
    admin.ok("POST", "/users", {"name": "rita", "team": "red"}, 201)
    keys = {
        "red-1": admin.ok("POST", "/keys", {"name": "red-1", "user": "rita"}, 201),
        "red-2": admin.ok("POST", "/keys", {"name": "red-2", "team": "red"}, 201),
        "blue-1": admin.ok("POST", "/keys", {"name": "blue-1", "team": "blue"}, 201),
        "red-admin": admin.ok(
            "POST", "/keys", {"name": "red-admin", "team": "red", "role": "team_admin"}, 201
        ),
        "viewer": admin.ok("POST", "/keys", {"name": "viewer", "role": "viewer"}, 201),
    }
    wait_keys_loaded(gw, [k["key"] for k in keys.values()])
    traffic = Traffic(config)
    plan = [
        ("red-1", "gpt-a", 2, False),
        ("red-1", "gpt-b", 1, False),
        ("red-2", "gpt-a", 1, True),
        ("blue-1", "gpt-a", 1, False),
        ("blue-1", "gpt-b", 2, False),
        ("blue-1", "gpt-b", 1, True),
    ]
    for key_name, model, count, error in plan:
        key = keys[key_name]
        with make_client(gw, key["key"]) as client:
            for i in range(count):
                traffic.records.append(_send(client, upstream, key, model, error, i))
    yield gw, keys, traffic
    admin.close()


def _send(
    client: openai.OpenAI, upstream: MockUpstream, key: dict[str, Any], model: str, error: bool, i: int
) -> dict[str, Any]:
    rid = f"usage-{uuid.uuid4().hex[:10]}"
    words = " ".join(["word"] * (3 + i))
    try:
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": words}],
            extra_headers={"x-request-id": rid},
            extra_body={"mock": {"status": 500}} if error else None,
        )
    except openai.InternalServerError:
        assert error
    recorded = upstream.wait_for(rid)
    usage = {"prompt_tokens": 0, "completion_tokens": 0} if error else recorded.response_json["usage"]
    price = PRICES[model]
    cost = (
        usage["prompt_tokens"] * price["input_per_1m"] + usage["completion_tokens"] * price["output_per_1m"]
    ) / 1e6
    return {
        "key": key["id"],
        "key_name": key["name"],
        "team": key["team_id"],
        "user": key["user_id"],
        "model": model,
        "deployment": f"up/up-{model}",
        "day": datetime.now(UTC).strftime("%Y-%m-%d"),
        "input_tokens": usage["prompt_tokens"],
        "output_tokens": usage["completion_tokens"],
        "error": int(error),
        "cost_usd": cost,
        "rid": rid,
    }


def _get(gw: Gateway, query: str, key: str = MASTER_KEY) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        conn.request("GET", "/admin/v1/usage" + query, headers={"authorization": f"Bearer {key}"})
        response = conn.getresponse()
        return response.status, response.getheader("content-type") or "", response.read()
    finally:
        conn.close()


def _report(
    gw: Gateway, query: str, key: str = MASTER_KEY, requests: int | None = None
) -> list[dict[str, Any]]:
    """The report's data; with `requests`, polled until it counts that many (rows are written in batches)."""
    deadline = time.monotonic() + 10
    while True:
        status, content_type, body = _get(gw, query, key)
        assert status == 200, body
        assert content_type.startswith("application/json")
        data: list[dict[str, Any]] = json.loads(body)["data"]
        if requests is None or sum(g["requests"] for g in data) >= requests or time.monotonic() > deadline:
            return data
        time.sleep(0.05)


def _assert_matches(data: list[dict[str, Any]], expected: dict[Any, dict[str, Any]]) -> None:
    assert {g["group"] for g in data} == set(expected)
    for group in data:
        want = expected[group["group"]]
        assert set(group) == {"group", "name", *FIELDS, "cost_usd"}
        for field in FIELDS:
            assert group[field] == want[field], (group["group"], field)
        assert group["cost_usd"] == pytest.approx(want["cost_usd"], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("group_by", ["key", "team", "user", "model", "deployment", "day"])
def test_usage_grouped_exactly(setup: tuple[Gateway, dict[str, Any], Traffic], group_by: str) -> None:
    gw, _, traffic = setup
    data = _report(gw, f"?group_by={group_by}", requests=len(traffic.records))
    _assert_matches(data, traffic.expected(group_by))
    if group_by == "key":
        names = {g["group"]: g["name"] for g in data}
        assert names == {r["key"]: r["key_name"] for r in traffic.records}
    if group_by == "team":
        assert {g["name"] for g in data} == {"red", "blue"}
    if group_by == "user":
        assert {g["name"] for g in data} == {"rita", None}
    # Most expensive first (days: in order).
    if group_by != "day":
        costs = [g["cost_usd"] for g in data]
        assert costs == sorted(costs, reverse=True)


def test_usage_time_filters_csv_and_bad_input(setup: tuple[Gateway, dict[str, Any], Traffic]) -> None:
    gw, _, traffic = setup
    total = _report(gw, "?group_by=model", requests=len(traffic.records))
    hour_ago = datetime.fromtimestamp(time.time() - 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _report(gw, f"?group_by=model&from={hour_ago}") == total
    assert _report(gw, f"?group_by=model&from={int(time.time() - 3600)}&to={int(time.time() + 60)}") == total
    assert _report(gw, f"?group_by=model&to={hour_ago}") == []
    assert _report(gw, f"?group_by=model&from={time.time() + 60}") == []

    status, content_type, body = _get(gw, "?group_by=model&format=csv")
    assert status == 200 and content_type.startswith("text/csv")
    lines = list(csv.reader(io.StringIO(body.decode())))
    assert lines[0] == [
        "group",
        "name",
        "requests",
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "cost_usd",
        "errors",
    ]
    by_group = {row[0]: row for row in lines[1:]}
    for group in total:
        row = by_group[group["group"]]
        assert [int(v) for v in (row[2], row[3], row[4], row[5], row[7])] == [
            group[f] for f in ("requests", "input_tokens", "output_tokens", "cached_tokens", "errors")
        ]
        assert float(row[6]) == pytest.approx(group["cost_usd"], rel=1e-9)

    for query, param in (
        ("?group_by=planet", "group_by"),
        ("?group_by=team&from=yesterday", "from"),
        ("?group_by=team&to=2026-13-45", "to"),
        ("?group_by=team&format=xml", "format"),
    ):
        status, _, body = _get(gw, query)
        assert status == 400, query
        error = json.loads(body)["error"]
        assert error["param"] == param and error["type"] == "invalid_request_error"


def test_usage_roles(setup: tuple[Gateway, dict[str, Any], Traffic]) -> None:
    gw, keys, traffic = setup
    everything = _report(gw, "?group_by=team", requests=len(traffic.records))
    assert _report(gw, "?group_by=team", keys["viewer"]["key"]) == everything
    red = keys["red-2"]["team_id"]
    # A team_admin sees its own team's requests only, whatever the grouping.
    own = [r for r in traffic.records if r["team"] == red]
    mine = _report(gw, "?group_by=key", keys["red-admin"]["key"])
    _assert_matches(mine, Traffic.expected(_only(own), "key"))
    assert [g["group"] for g in _report(gw, "?group_by=team", keys["red-admin"]["key"])] == [red]
    status, _, _ = _get(gw, "?group_by=team", keys["blue-1"]["key"])  # an inference key
    assert status == 403
    status, _, _ = _get(gw, "?group_by=team", "sk-not-a-key-0000")
    assert status == 401
    document = AdminClient(gw, MASTER_KEY).ok("GET", "/openapi.json")
    assert "UsageGroup" in document["components"]["schemas"] and "get" in document["paths"]["/usage"]


def test_spend_since_for_budgets(setup: tuple[Gateway, dict[str, Any], Traffic]) -> None:
    """The ledger repository's spend sums, which budgets seed their period's spend from."""
    gw, keys, traffic = setup
    _report(gw, "?group_by=key", requests=len(traffic.records))

    async def spend() -> dict[str, float]:
        store = await open_store(traffic.config["store"]["url"])
        try:
            repository = LedgerRepository(store)
            red = keys["red-2"]["team_id"]
            return {
                "team": await repository.spend_since("team", red, time.time() - 3600),
                "team-later": await repository.spend_since("team", red, time.time() + 60),
                "key": await repository.spend_since("key", keys["blue-1"]["id"], 0),
                "user": await repository.spend_since("user", keys["red-1"]["user_id"], 0),
                "model": await repository.spend_since("model", "gpt-b", 0),
            }
        finally:
            await store.close()

    got = asyncio.run(spend())
    by = {f: traffic.expected(f) for f in ("team", "key", "user", "model")}
    assert got["team"] == pytest.approx(by["team"][keys["red-2"]["team_id"]]["cost_usd"], rel=1e-9)
    assert got["team-later"] == 0.0
    assert got["key"] == pytest.approx(by["key"][keys["blue-1"]["id"]]["cost_usd"], rel=1e-9)
    assert got["user"] == pytest.approx(by["user"][keys["red-1"]["user_id"]]["cost_usd"], rel=1e-9)
    assert got["model"] == pytest.approx(by["model"]["gpt-b"]["cost_usd"], rel=1e-9)
    assert got["team"] > 0 and got["key"] > 0


def _only(records: list[dict[str, Any]]) -> Traffic:
    traffic = Traffic()
    traffic.records = records
    return traffic


def test_usage_cli_matches_the_api(setup: tuple[Gateway, dict[str, Any], Traffic], tmp_path: Any) -> None:
    gw, _, traffic = setup
    api = _report(gw, "?group_by=team", requests=len(traffic.records))
    config = write_config(traffic.config, tmp_path / "cli.yaml")
    result = run_cli(
        ["usage", "--config", str(config), "--group-by", "team", "--since", "7d", "--format", "json"]
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["data"] == api
    result = run_cli(["usage", "--config", str(config), "--group-by", "team", "--since", "7d"])
    assert result.returncode == 0 and result.stdout.splitlines()[0].split()[:3] == [
        "GROUP",
        "NAME",
        "REQUESTS",
    ]
    assert {"red", "blue"} <= set(result.stdout.split())
    result = run_cli(
        ["usage", "--config", str(config), "--group-by", "team", "--since", "7d", "--format", "csv"]
    )
    assert result.returncode == 0 and result.stdout.startswith("group,name,requests,")
    assert len(result.stdout.splitlines()) == 1 + len(api)
    future = run_cli(
        ["usage", "--config", str(config), "--since", "2999-01-01T00:00:00Z", "--format", "json"]
    )
    assert json.loads(future.stdout) == {"data": []}
    bad = run_cli(["usage", "--config", str(config), "--since", "last tuesday"])
    assert bad.returncode == 1 and "since" in bad.stderr
