"""Issue 17, finding 6 and a low finding: requests that cost the store or the limits nothing to send.
Every 401 wrote a ledger row (a flood of bad keys filled the store), the client's `model` was stored
at any length (a 4 MB name added 16 MB to SQLite), and `/v1/messages/count_tokens` ignored rate
limits. Now refused callers are counted in the metrics only, the model name is bounded (400), and
count_tokens counts against the key's rpm."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import anthropic

from ..e2e import raw_http
from ..e2e.gateway import MASTER_KEY, GatewayFactory, standard_config
from ..e2e.ledger_store import LedgerStore
from ..upstreams.openai_mock import MockUpstream, RefusedPort

HI = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
LIMITED_KEY = "sk-limited-count-tokens-e2e-5c1d"


def test_bad_keys_write_no_rows_and_long_model_names_are_refused(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    config = standard_config(upstream.base_url, refused.base_url)
    config["store"] = {"url": store_url}
    gw = gateway_factory(config)
    flood = [f"bad-{uuid.uuid4().hex}" for _ in range(25)]
    for rid in flood:
        answer = raw_http.post_json(
            gw.port, "/v1/chat/completions", HI, "sk-wrong", extra_headers={"x-request-id": rid}
        )
        assert answer.status == 401
    huge = raw_http.post_json(gw.port, "/v1/chat/completions", {**HI, "model": "m" * 5_000}, MASTER_KEY)
    assert huge.status == 400
    assert huge.json()["error"]["param"] == "model"
    assert len(huge.body) < 1000  # the name is not echoed back
    control = raw_http.post_json(gw.port, "/v1/chat/completions", {**HI, "model": "gpt\x00test"}, MASTER_KEY)
    assert control.status == 400
    good = f"good-{uuid.uuid4().hex}"
    ok = raw_http.post_json(
        gw.port, "/v1/chat/completions", HI, MASTER_KEY, extra_headers={"x-request-id": good}
    )
    assert ok.status == 200
    ledger = LedgerStore(store_url)
    rows = ledger.wait_rows({good})
    ids = {row["request_id"] for row in rows}
    assert not ids & set(flood)
    assert max(len(row["model"] or "") for row in rows) <= 256
    # The refusals are still counted, in the metrics.
    metrics = raw_http.request(gw.port, "GET", "/metrics").body.decode()
    counted = [line for line in metrics.splitlines() if line.startswith("gatecore_requests_total")]
    assert any('status_class="4xx"' in line and float(line.split()[-1]) >= len(flood) for line in counted)


def test_count_tokens_counts_against_the_keys_rpm(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    config = standard_config(upstream.base_url, refused.base_url)
    config["auth"]["keys"].append({"key": LIMITED_KEY, "name": "limited", "rpm": 3})
    gw = gateway_factory(config)
    claude = anthropic.Anthropic(api_key=LIMITED_KEY, base_url=gw.base_url, max_retries=0)
    statuses = []
    started = time.monotonic()
    for _ in range(5):
        try:
            claude.messages.count_tokens(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
            statuses.append(200)
        except anthropic.RateLimitError as exc:
            assert isinstance(exc.body, dict) and exc.body["error"]["type"] == "rate_limit_error"
            assert "allows 3 requests per minute" in exc.body["error"]["message"]
            statuses.append(429)
    assert time.monotonic() - started < 30  # all within the rpm window
    assert statuses == [200, 200, 200, 429, 429]
