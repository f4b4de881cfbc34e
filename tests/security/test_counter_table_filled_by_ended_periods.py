"""Attack: fill the limits' shared table with budget periods that have ended, until every request
that a limit applies to is refused.

Issue 17 (low): the shared counter table never freed a slot, and a budget's cells were named by
their period, so every period of every budget scope claimed new slots for good (its spend, its alert
flag, its seed claim). With a short rolling period, a key with a budget ran the server's table full
within minutes and the gateway then answered 503 `limits_table_full` to every limited request. Now a
budget's cells are the same in every period (the period's tag lives in the cell's value and a new
period starts from zero in place: rust/src/budget_cells.rs): slots are bounded by the scopes that
exist, not by time.
"""

from __future__ import annotations

from pathlib import Path

import openai

from ..e2e.conftest import make_client
from ..e2e.gateway import GatewayFactory
from ..e2e.test_budgets import BUDGET_KEY, budget_config, spend
from ..upstreams.openai_mock import MockUpstream, RefusedPort

PERIODS = 400  # more than the smallest table (1024 slots) held before: three new slots a period
START = 1_577_836_800  # 2020-01-01 UTC: far from the ledger's real timestamps (no spend to seed)


def test_budget_periods_reuse_their_cells(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, tmp_path: Path
) -> None:
    clock = tmp_path / "clock"
    clock.write_text(str(START))
    config = budget_config(upstream, refused, 10.0, period="rolling", rolling_s=60)
    config["limits"] = {"table_slots": 1024}
    gw = gateway_factory(config, env={"GATECORE_TEST_CLOCK_FILE": str(clock)})
    with make_client(gw, BUDGET_KEY) as client:
        for period in range(PERIODS):
            clock.write_text(str(START + 60 * period + 1))
            # $10 a period, $5 a request: two pass in every period (each starts from zero)…
            got = [spend(client) for _ in range(2)]
            if period % 100 == 99:  # …and the third is over budget
                got.append(spend(client))
                assert got == [200, 200, 429], f"period {period}: {got}"
            assert got[:2] == [200, 200], f"period {period}: {got}"
    # The table still serves a key it has not seen (slots were not used up by the periods).
    with make_client(gw) as master:
        answer = master.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
        assert isinstance(answer, openai.types.chat.ChatCompletion)
