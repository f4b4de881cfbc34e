"""Issue 17, low: a model with no known price (an unknown name under a wildcard route) was priced $0,
so a budget never moved however much it was used; and a wildcard route's model budget restarted from
zero with the server (the ledger keeps the model the client asked for, the seed looked for the
route's name). Now an unpriced model under a budget is refused (403 `model_not_priced`), and the seed
sums the route's models."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from gatecore.ledger.repository import LedgerRepository
from gatecore.store import open_store
from gatecore.store.migrations import migrate

from ..e2e import raw_http
from ..e2e.gateway import MASTER_KEY, GatewayFactory, standard_config
from ..e2e.ledger_store import ledger_row
from ..upstreams.openai_mock import MockUpstream, RefusedPort


def test_an_unpriced_model_under_a_budget_is_refused(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    config = standard_config(upstream.base_url, refused.base_url)
    config["models"].append({"name": "any/*", "deployments": [{"provider": "up", "model": "*"}]})
    config["budgets"] = {"models": {"any/*": {"usd": 5, "period": "monthly"}}}
    gw = gateway_factory(config)
    body = {"model": "any/no-such-price-model", "messages": [{"role": "user", "content": "hi"}]}
    answer = raw_http.post_json(gw.port, "/v1/chat/completions", body, MASTER_KEY)
    assert answer.status == 403
    assert answer.json()["error"]["code"] == "model_not_priced"
    # Without a budget the same model is served (it just is not priced).
    free = raw_http.post_json(gw.port, "/v1/chat/completions", {**body, "model": "gpt-test"}, MASTER_KEY)
    assert free.status == 200


def test_a_wildcard_routes_budget_is_seeded_from_what_its_models_spent(tmp_path: Path) -> None:
    async def spent() -> tuple[float, float]:
        store = await open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
        try:
            await migrate(store)
            now = time.time()
            repository = LedgerRepository(store)
            rows = [
                ledger_row(id=f"r{i}", request_id=f"q{i}", at=now, model=model, cost_usd=cost, latency_ms=1.0)
                for i, (model, cost) in enumerate(
                    [("any/gpt-4o", 2.0), ("any/o3", 1.5), ("anything-else", 7.0), ("any", 9.0)]
                )
            ]
            await repository.insert(rows)
            wildcard = await repository.spend_since("model", "any/*", now - 60)
            exact = await repository.spend_since("model", "any/o3", now - 60)
            repository.close()
            return wildcard, exact
        finally:
            await store.close()

    assert asyncio.run(spent()) == (3.5, 1.5)
