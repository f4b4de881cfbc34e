"""Issue 17, finding 6: requests refused at routing (an unknown model, a model the key may not use)
never counted against the key's rpm, so a known caller could send them without limit. They now spend
a request of the key's rpm like any other request (after their answer: they are still 404 or 403)."""

from __future__ import annotations

from ..e2e import raw_http
from ..e2e.gateway import GatewayFactory, standard_config
from ..upstreams.openai_mock import MockUpstream, RefusedPort

KEY = "sk-refusal-flood-e2e-31aa"
HI = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


def test_refusals_at_routing_spend_the_keys_rpm(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    config = standard_config(upstream.base_url, refused.base_url)
    config["auth"]["keys"].append({"key": KEY, "name": "flooder", "models": ["gpt-test"], "rpm": 4})
    gw = gateway_factory(config)
    statuses = [
        raw_http.post_json(gw.port, "/v1/chat/completions", {**HI, "model": model}, KEY).status
        for model in ("no-such-model", "no-such-model", "embed-test")
    ]
    assert statuses == [404, 404, 403]
    assert raw_http.post_json(gw.port, "/v1/chat/completions", HI, KEY).status == 200  # the 4th request
    limited = raw_http.post_json(gw.port, "/v1/chat/completions", HI, KEY)
    assert limited.status == 429
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
