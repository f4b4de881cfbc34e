"""Gemini requests are accounted like any other: a ledger row per request with the upstream's usage
and its cost, a key's budget stops it on the Gemini route (429 in Gemini's shape), and a stream
request an upstream answers whole still reaches the client as a stream; candidateCount becomes `n`."""

from __future__ import annotations

import json
from pathlib import Path

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .conftest import new_request_id
from .gateway import Gateway, GatewayFactory
from .gemini_client import gemini_post, sse_chunks
from .ledger_store import LedgerStore
from .test_budgets import BUDGET_KEY, budget_config

GENERATE = "/v1beta/models/gpt-test:generateContent"
STREAM = "/v1beta/models/gpt-test:streamGenerateContent?alt=sse"


def four_tokens(text: str = "hi") -> dict[str, object]:
    """A request the budget tests' prices make a $5 one: 1 prompt token, 4 output tokens."""
    return {
        "contents": [{"role": "user", "parts": [{"text": text}]}],
        "generationConfig": {"maxOutputTokens": 4},
        "mock": {"chunks": 4},
    }


def test_budget_stops_a_key_on_the_gemini_route(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, tmp_path: Path
) -> None:
    gw = gateway_factory(budget_config(upstream, refused, 15.0, period="monthly"))
    headers = {"x-goog-api-key": BUDGET_KEY}
    sent = []
    for path in (GENERATE, STREAM, GENERATE):
        rid = new_request_id()
        status, _, _ = gemini_post(gw, path, four_tokens(), {**headers, "x-request-id": rid})
        assert status == 200
        sent.append(rid)
    status, response_headers, body = gemini_post(gw, GENERATE, four_tokens(), headers)
    assert status == 429
    error = json.loads(body)["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED" and "budget" in error["message"]
    assert int(response_headers["retry-after"]) >= 1
    # One ledger row per served request, with the upstream's usage and its price.
    store = LedgerStore(f"sqlite:///{tmp_path / 'gw0' / 'gatecore.db'}")
    try:
        rows = {r["request_id"]: r for r in store.wait_rows(set(sent))}
    finally:
        store.close()
    for rid in sent:
        row = rows[rid]
        assert (row["model"], row["status"], row["usage_source"]) == ("gpt-test", 200, "upstream")
        assert row["output_tokens"] == 4
        assert row["cost_usd"] == row["input_tokens"] + row["output_tokens"]  # $1 a token
    assert [bool(rows[rid]["streamed"]) for rid in sent] == [False, True, False]


def test_stream_answered_whole_is_sent_as_a_stream(gateway: Gateway) -> None:
    body = {"contents": [{"parts": [{"text": "whole"}]}], "mock": {"no_stream": True}}
    status, headers, answer = gemini_post(gateway, STREAM, body)
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    [chunk] = sse_chunks(answer)
    assert chunk["candidates"][0]["content"]["parts"] == [{"text": "mock: whole"}]
    assert chunk["candidates"][0]["finishReason"] == "STOP"
    status, _, answer = gemini_post(gateway, STREAM.split("?")[0], body)
    [element] = json.loads(answer)
    assert element["usageMetadata"]["totalTokenCount"] > 0


def test_candidate_count_reaches_the_upstream_as_n(gateway: Gateway, upstream: MockUpstream) -> None:
    # The mock answers one choice whatever `n`; several candidates are covered by tests/unit/test_gemini_stream.py.
    rid = new_request_id()
    body = {"contents": [{"parts": [{"text": "two"}]}], "generationConfig": {"candidateCount": 2}}
    status, _, answer = gemini_post(gateway, GENERATE, body, {"x-request-id": rid})
    assert status == 200, answer
    assert upstream.wait_for(rid).body_json["n"] == 2
    assert json.loads(answer)["candidates"][0]["index"] == 0
