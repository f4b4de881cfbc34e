"""`POST /v1/responses` passed through to an upstream that speaks Responses (`responses: native`): the
client's bytes reach the upstream with only `model` rewritten, the answer comes back as the upstream
sent it (its model name mapped back), and its usage reaches the records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from ..upstreams import azure_mock
from ..upstreams.azure_mock import AzureMock
from ..upstreams.openai_mock import MockUpstream
from .anthropic_client import post_raw, sse_events
from .conftest import make_client, new_request_id
from .gateway import MASTER_KEY, Gateway, GatewayFactory
from .ledger_store import LedgerStore

TIMEOUTS = {"connect": 2, "first_byte": 5, "idle": 5, "total": 10}
AUTH = {"authorization": f"Bearer {MASTER_KEY}", "x-api-key": ""}
WEATHER: Any = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


@pytest.fixture
def ledger(tmp_path: Path) -> LedgerStore:
    return LedgerStore(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.fixture
def gw(upstream: MockUpstream, gateway_factory: GatewayFactory, ledger: LedgerStore) -> Gateway:
    providers = [{"name": "native", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up",
                  "responses": "native"}]  # fmt: skip
    models = [{"name": "native-model", "deployments": [{"provider": "native", "model": "gpt-native"}],
               "timeouts": TIMEOUTS}]  # fmt: skip
    config = {"server": {"access_log": True}, "providers": providers, "models": models,
              "auth": {"master_key": MASTER_KEY}, "store": {"url": ledger.url}}  # fmt: skip
    return gateway_factory(config)


@pytest.fixture
def client(gw: Gateway) -> Iterator[openai.OpenAI]:
    with make_client(gw, timeout=20) as c:
        yield c


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_client_bytes_reach_upstream_with_only_model_rewritten(
    gw: Gateway, upstream: MockUpstream, ledger: LedgerStore, stream: bool
) -> None:
    rid = new_request_id()
    body = {
        "model": "native-model", "input": [{"role": "user", "content": "hello native"}],
        "tools": [{"type": "web_search"}, WEATHER, {"type": "namespace", "name": "mcp", "tools": []}],
        "store": False, "include": ["reasoning.encrypted_content"], "client_metadata": {"a": "b"},
        "prompt_cache_key": "k1", "some_future_field": {"x": [1, 2]}, "stream": stream,
    }  # fmt: skip
    status, headers, answer = post_raw(gw, body, {**AUTH, "x-request-id": rid}, path="/v1/responses")
    assert status == 200, answer
    assert "x-gatecore-dropped-tools" not in headers
    recorded = upstream.wait_for(rid)
    assert recorded.path == "/v1/responses"
    assert recorded.body_json == {**body, "model": "gpt-native"}
    if stream:
        events = sse_events(answer)
        assert events[0][0] == "response.created" and events[-1][0] == "response.completed"
        assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
        final = events[-1][1]["response"]
        # Every event but the lifecycle ones is the upstream's, byte for byte.
        sent = [e.decode() for e in recorded.events]
        assert [json.loads(e.split("data: ", 1)[1]) for e in sent[2:-1]] == [d for _, d in events[2:-1]]
    else:
        final = json.loads(answer)
    assert final["model"] == "native-model"
    assert final["output"][0]["content"][0]["text"] == "mock: hello native"
    usage = final["usage"]
    entry = gw.wait_access_log(rid)
    assert (entry["input_tokens"], entry["output_tokens"]) == (usage["input_tokens"], usage["output_tokens"])
    (row,) = [r for r in ledger.wait_rows({rid}) if r["request_id"] == rid]
    assert (row["input_tokens"], row["output_tokens"], row["cached_tokens"]) == (
        usage["input_tokens"], usage["output_tokens"], usage["input_tokens_details"]["cached_tokens"]
    )  # fmt: skip
    assert row["usage_source"] == "upstream" and row["model"] == "native-model" and row["status"] == 200
    assert row["endpoint"] == "responses"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_sdk_tool_call_through_native(client: openai.OpenAI, upstream: MockUpstream, stream: bool) -> None:
    steer = {
        "mock": {"tool_calls": [{"id": "call_n", "name": "get_weather", "arguments": '{"city":"Oslo"}'}]}
    }
    kwargs: Any = {"model": "native-model", "input": "weather?", "tools": [WEATHER], "extra_body": steer}
    if stream:
        with client.responses.stream(**kwargs) as s:
            for _ in s:
                pass
            response = s.get_final_response()
    else:
        response = client.responses.create(**kwargs)
    calls = [(o.call_id, o.name, o.arguments) for o in response.output if o.type == "function_call"]
    assert calls == [("call_n", "get_weather", '{"city":"Oslo"}')]
    assert response.model == "native-model"


def test_broken_native_stream_ends_with_error_event(gw: Gateway) -> None:
    body = {"model": "native-model", "input": "one two three four", "stream": True, "mock": {"cut_after": 4}}
    status, _, answer = post_raw(gw, body, AUTH, path="/v1/responses")
    assert status == 200
    events = sse_events(answer)
    assert [n for n, _ in events[:4]] == ["response.created", "response.in_progress",
                                          "response.output_item.added", "response.content_part.added"]  # fmt: skip
    assert events[-1][0] == "error" and events[-1][1]["sequence_number"] == 4 and events[-1][1]["message"]


def test_native_upstream_error_in_openai_shape(gw: Gateway) -> None:
    body = {"model": "native-model", "input": "x", "mock": {"status": 429}}
    status, _, answer = post_raw(gw, body, AUTH, path="/v1/responses")
    assert status == 429
    assert json.loads(answer)["error"]["message"]


def test_azure_speaks_responses_natively_by_default(gateway_factory: GatewayFactory) -> None:
    with AzureMock() as azure:
        providers = [{"name": "az", "kind": "azure", "base_url": azure.origin, "api_key": azure_mock.API_KEY}]
        models = [{"name": "az-model", "deployments": [{"provider": "az", "model": "my-deployment"}],
                   "timeouts": TIMEOUTS}]  # fmt: skip
        gw = gateway_factory({"providers": providers, "models": models, "auth": {"master_key": MASTER_KEY}})
        rid = new_request_id()
        with make_client(gw, timeout=20) as client:
            response = client.responses.create(
                model="az-model",
                input="hi azure",
                tools=[{"type": "web_search"}],
                extra_headers={"x-request-id": rid},
            )
        assert response.output_text == "mock: hi azure" and response.model == "az-model"
        recorded = azure.wait_for(rid)
        assert recorded.path == "/openai/v1/responses" and recorded.headers["api-key"] == azure_mock.API_KEY
        assert recorded.body_json["model"] == "my-deployment"
        assert recorded.body_json["tools"] == [{"type": "web_search"}]
