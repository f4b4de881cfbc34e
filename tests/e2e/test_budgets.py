"""Budgets end to end: a key stopped at the right spend, a concurrent burst that never passes the budget
(a reservation is admitted only when it fits under the limit), calendar rollover in a configured time zone (injectable clock), and the soft-budget webhook.

Prices are set so that a request costs exactly its token count in USD ($1 per token in and out): the
mock answers `chunks` output tokens to a one-word prompt, so a request with `chunks: 4` costs $5.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .conftest import make_async_client, make_client
from .gateway import GatewayFactory, standard_config
from .test_limits import HI, error_body

BUDGET_KEY = "sk-budget-key-e2e-77aa"
REQUEST_USD = 5.0  # 1 prompt token + 4 output tokens at $1 each
FOUR = {"mock": {"chunks": 4}}
NEW_YORK = ZoneInfo("America/New_York")


def budget_config(
    upstream: MockUpstream, refused: RefusedPort, key_usd: float, **budgets: Any
) -> dict[str, Any]:
    config = standard_config(upstream.base_url, refused.base_url)
    for model in config["models"]:
        for deployment in model["deployments"]:
            deployment["pricing"] = {"input_per_1m": 1e6, "output_per_1m": 1e6}
    config["auth"]["keys"].append({"key": BUDGET_KEY, "name": "budget-key", "budget_usd": key_usd})
    config["budgets"] = budgets
    return config


def spend(client: openai.OpenAI, model: str = "gpt-test") -> int:
    """One $5 request; its status."""
    try:
        client.chat.completions.create(model=model, messages=HI, max_tokens=4, extra_body=FOUR)
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


def test_budget_stops_a_key_at_the_right_spend(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    gw = gateway_factory(budget_config(upstream, refused, 15.0, period="monthly"))
    with make_client(gw, BUDGET_KEY) as client:
        # $5 reservations fit at $0, $5 and $10 (the third exactly to $15); the fourth does not.
        assert [spend(client) for _ in range(3)] == [200, 200, 200]
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model="gpt-test", messages=HI, max_tokens=4, extra_body=FOUR)
        body = error_body(info.value)
        assert body["code"] == "budget_exceeded"
        assert (
            "key 'budget-key'" in body["message"]
            and "monthly" in body["message"]
            and "$15" in body["message"]
        )
        assert BUDGET_KEY not in body["message"]
        assert int(info.value.response.headers["retry-after"]) >= 1
    # Other keys are not affected.
    with make_client(gw) as master:
        assert spend(master) == 200


def test_concurrent_burst_never_passes_the_budget(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    budget = 18.0
    gw = gateway_factory(budget_config(upstream, refused, budget))

    async def burst() -> list[int]:
        async with make_async_client(gw, BUDGET_KEY) as client:

            async def one() -> int:
                try:
                    await client.chat.completions.create(
                        model="gpt-slow",
                        messages=HI,
                        max_tokens=4,
                        extra_body={"mock": {"chunks": 4, "first_byte_delay_ms": 500}},
                    )
                except openai.RateLimitError:
                    return 429
                return 200

            return await asyncio.gather(*(one() for _ in range(16)))

    statuses = asyncio.run(burst())
    served = statuses.count(200)
    # All 16 arrive before any finishes: reservations alone keep the spend within the budget.
    assert served * REQUEST_USD <= budget
    assert served == 3 and statuses.count(429) == 13
    with make_client(gw, BUDGET_KEY) as client:
        assert spend(client) == 429


def test_a_restart_keeps_the_spend_the_ledger_holds(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, tmp_path: Path
) -> None:
    """The shared-memory counters start at zero with a server; the ledger does not. A budget spent
    before a restart stays spent after it (no Redis)."""
    config = budget_config(upstream, refused, 15.0, period="monthly")
    config["store"] = {"url": f"sqlite:///{tmp_path / 'budget.db'}"}
    first = gateway_factory(config)
    with make_client(first, BUDGET_KEY) as client:
        assert [spend(client) for _ in range(2)] == [200, 200]  # $10 of $15
    first.stop()  # SIGTERM: the ledger flushes its rows
    second = gateway_factory(config, workers=2)
    with make_client(second, BUDGET_KEY) as client:
        assert spend(client) == 200  # $10 + $5 fits in $15: one more is admitted
        assert spend(client) == 429  # over: the spend from before the restart counted


@contextlib.contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()


def set_clock(path: Path, when: datetime) -> None:
    path.write_text(str(when.timestamp()))


def test_calendar_rollover_in_the_configured_time_zone(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, tmp_path: Path
) -> None:
    clock = tmp_path / "clock"
    # 18:59:50 in New York is 23:59:50 UTC: the UTC day ends first, the New York day later.
    set_clock(clock, datetime(2026, 3, 6, 18, 59, 50, tzinfo=NEW_YORK))
    config = budget_config(
        upstream,
        refused,
        10.0,
        period="daily",
        timezone="America/New_York",
        models={"gpt-other": {"usd": 10.0, "period": "monthly"}},
    )
    gw = gateway_factory(config, env={"GATECORE_TEST_CLOCK_FILE": str(clock)})
    with make_client(gw, BUDGET_KEY) as client, make_client(gw) as master:
        assert [spend(client) for _ in range(3)] == [200, 200, 429]
        # Past midnight UTC, still the same day in New York: still refused, until New York's midnight.
        set_clock(clock, datetime(2026, 3, 6, 19, 0, 10, tzinfo=NEW_YORK))
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model="gpt-test", messages=HI, max_tokens=4, extra_body=FOUR)
        assert abs(int(info.value.response.headers["retry-after"]) - 5 * 3600 + 10) <= 1
        set_clock(clock, datetime(2026, 3, 7, 0, 0, 5, tzinfo=NEW_YORK))
        assert [spend(client) for _ in range(3)] == [200, 200, 429]

        # A model's monthly budget (every key counts towards it) rolls over on the 1st, local time.
        set_clock(clock, datetime(2026, 3, 31, 23, 59, 0, tzinfo=NEW_YORK))
        assert [spend(master, "gpt-other") for _ in range(3)] == [200, 200, 429]
        set_clock(
            clock, datetime(2026, 4, 1, 3, 0, 0, tzinfo=ZoneInfo("UTC"))
        )  # 23:00 on the 31st in New York
        assert spend(master, "gpt-other") == 429
        set_clock(clock, datetime(2026, 4, 1, 0, 0, 1, tzinfo=NEW_YORK))
        assert spend(master, "gpt-other") == 200


def test_soft_budget_alerts_once_and_serves_on(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    with webhook_receiver() as (url, received):
        config = budget_config(upstream, refused, 12.0, mode="soft", alert_webhook=url, period="weekly")
        gw = gateway_factory(config)
        with make_client(gw, BUDGET_KEY) as client:
            assert [spend(client) for _ in range(5)] == [200] * 5  # $25 of a $12 soft budget
        for _ in range(100):
            if received:
                break
            threading.Event().wait(0.05)
        threading.Event().wait(0.3)  # a second alert would have arrived by now
    assert len(received) == 1, received
    alert = received[0]
    assert alert["event"] == "budget_crossed" and alert["scope"] == "key 'budget-key'"
    assert alert["scope_kind"] == "key" and alert["period"] == "weekly"
    assert alert["budget_usd"] == 12.0 and alert["spent_usd"] == 15.0
    assert BUDGET_KEY not in json.dumps(alert)
