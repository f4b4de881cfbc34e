"""What a cache hit costs and counts (issue 19): a ledger row with cache_hit, no upstream cost and the
saved cost; a request against rpm but no tokens against tpm; the cache's figures on /metrics."""

from __future__ import annotations

import http.client
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .admin_client import AdminClient
from .conftest import make_client, new_request_id, wait_keys_loaded
from .gateway import MASTER_KEY, Gateway, running_gateway, standard_config, write_config
from .ledger_store import LedgerStore
from .prometheus_text import Exposition, parse

CACHE = "x-gatecore-cache"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache-accounting")


@pytest.fixture(scope="module")
def gw(upstream: MockUpstream, refused: RefusedPort, workdir: Path) -> Iterator[Gateway]:
    config = standard_config(upstream.base_url, refused.base_url)
    config["cache"] = {"enabled": True}
    config["store"] = {"url": f"sqlite:///{workdir / 'store.db'}"}
    config["ledger"] = {"flush_interval_s": 0.05}
    config["models"].append(
        {
            "name": "gpt-priced",
            "deployments": [
                {
                    "provider": "up",
                    "model": "upstream-model-1",
                    "pricing": {"input_per_1m": 1000.0, "output_per_1m": 2000.0},
                }
            ],
        }
    )
    path = write_config(config, workdir / "gatecore.yaml")
    with running_gateway(["--config", str(path)], workdir, config=config) as gateway:
        yield gateway


def ask(client: openai.OpenAI, text: str) -> tuple[str, dict[str, str]]:
    rid = new_request_id()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-priced",
        messages=[{"role": "user", "content": text}],
        temperature=0,
        max_tokens=20,
        extra_headers={"x-request-id": rid},
    )
    return rid, dict(raw.headers)


def test_hit_is_a_ledger_row_with_saved_cost(gw: Gateway, workdir: Path) -> None:
    text = f"price me {uuid.uuid4().hex}"
    with make_client(gw) as client:
        rids = [ask(client, text) for _ in range(3)]
    assert [head[CACHE] for _, head in rids] == ["miss", "hit", "hit"]
    store = LedgerStore(f"sqlite:///{workdir / 'store.db'}")
    rows = {r["request_id"]: r for r in store.wait_rows({rid for rid, _ in rids})}
    miss, *hits = (rows[rid] for rid, _ in rids)
    assert miss["cache_hit"] in (False, 0) and miss["saved_usd"] is None
    assert miss["cost_usd"] > 0
    for hit in hits:
        assert hit["cache_hit"] in (True, 1)
        assert hit["cost_usd"] == 0
        assert hit["saved_usd"] == pytest.approx(miss["cost_usd"])
        assert hit["usage_source"] == "cache"
        assert (hit["input_tokens"], hit["output_tokens"]) == (miss["input_tokens"], miss["output_tokens"])
        assert hit["status"] == 200 and hit["model"] == "gpt-priced"


def test_hits_count_as_requests_not_tokens(gw: Gateway) -> None:
    admin = AdminClient(gw, MASTER_KEY)
    # A prompt and answer of ~100 tokens each: four requests' tokens exceed 400 tpm, ten hits do not.
    key = admin.ok("POST", "/keys", {"name": "cache-tpm", "rpm": 1000, "tpm": 400}, 201)["key"]
    wait_keys_loaded(gw, [key])
    text = f"count {uuid.uuid4().hex} " + "word " * 100
    remaining: list[int] = []
    with make_client(gw, key) as client:
        _, head = ask(client, text)
        assert head[CACHE] == "miss"
        for _ in range(10):
            _, head = ask(client, text)
            assert head[CACHE] == "hit"
            remaining.append(int(head["x-ratelimit-remaining-requests"]))
        # A request that is not a hit still fits: the hits left the tokens alone.
        _, head = ask(client, f"other {uuid.uuid4().hex}")
        assert head[CACHE] == "miss"
    assert remaining == sorted(remaining, reverse=True) and remaining[0] > remaining[-1], remaining


def scrape(gw: Gateway) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"authorization": f"Bearer {MASTER_KEY}"})
        response = conn.getresponse()
        assert response.status == 200
        return response.read().decode()
    finally:
        conn.close()


def test_metrics_count_the_cache(gw: Gateway) -> None:
    before = parse(scrape(gw))
    text = f"measure {uuid.uuid4().hex}"
    with make_client(gw) as client:
        for _ in range(3):
            ask(client, text)
        client.chat.completions.create(
            model="gpt-priced", messages=[{"role": "user", "content": text}], temperature=0.9
        )
    labels = {"backend": "memory"}
    deadline = time.monotonic() + 5
    while True:
        after = parse(scrape(gw))

        def delta(name: str, after: Exposition = after) -> float:
            return after.value(name, **labels) - before.value(name, **labels)

        if delta("gatecore_cache_hits_total") >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert delta("gatecore_cache_hits_total") == 2
    assert delta("gatecore_cache_misses_total") == 1
    assert delta("gatecore_cache_stores_total") == 1
    assert delta("gatecore_cache_bypasses_total") == 1
    assert delta("gatecore_cache_saved_usd_total") > 0
    assert after.value("gatecore_cache_bytes", **labels) > 0
    assert delta("gatecore_cache_lookup_seconds_count") == 3
