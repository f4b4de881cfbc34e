"""Issue 17, low: the "prefix" of a key that is not a gatecore virtual key (the master key, config
keys: secrets an operator chose, often short) was its first 6 characters, written into access logs,
traces and ledger names. Now such a key shows at most 3 characters, and none when it is short."""

from __future__ import annotations

from ..e2e import raw_http
from ..e2e.gateway import GatewayFactory, standard_config
from ..upstreams.openai_mock import MockUpstream, RefusedPort

SHORT = "hunter2-pass"  # 12 characters: half of it was shown
LONG = "sk-operator-chosen-key-0123456789"
HI = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


def test_operator_keys_show_no_more_than_a_vendor_prefix(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    config = standard_config(upstream.base_url, refused.base_url, access_log=True)
    config["auth"]["keys"] += [{"key": SHORT, "name": "short"}, {"key": LONG, "name": "long"}]
    gw = gateway_factory(config)
    for rid, key in (("prefix-short", SHORT), ("prefix-long", LONG)):
        answer = raw_http.post_json(
            gw.port, "/v1/chat/completions", HI, key, extra_headers={"x-request-id": rid}
        )
        assert answer.status == 200
    assert gw.wait_access_log("prefix-short")["key_prefix"] == "…"
    assert gw.wait_access_log("prefix-long")["key_prefix"] == "sk-…"
    assert "hunter" not in gw.output() and "sk-ope" not in gw.output()
