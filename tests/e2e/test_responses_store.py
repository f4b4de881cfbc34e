"""Stored responses (`store: true`, the reference's default) on SQLite and PostgreSQL: retrieve, list
input items, continue with `previous_response_id` (on a translating and a native provider), delete;
and the tenant boundary: another team's response id is a 404 for every route."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream
from .admin_client import AdminClient
from .anthropic_client import post_raw
from .conftest import make_client, new_request_id, wait_keys_loaded
from .gateway import MASTER_KEY, Gateway, GatewayFactory

TIMEOUTS = {"connect": 2, "first_byte": 5, "idle": 5, "total": 10}


@pytest.fixture
def setup(
    upstream: MockUpstream, gateway_factory: GatewayFactory, store_url: str
) -> Iterator[tuple[Gateway, dict[str, str]]]:
    providers = [
        {"name": "chat", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up"},
        {"name": "native", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up", "responses": "native"},
    ]  # fmt: skip
    models = [
        {"name": "chat-model", "deployments": [{"provider": "chat", "model": "gpt-chat"}], "timeouts": TIMEOUTS},
        {"name": "native-model", "deployments": [{"provider": "native", "model": "gpt-native"}], "timeouts": TIMEOUTS},
    ]  # fmt: skip
    config = {"providers": providers, "models": models, "store": {"url": store_url},
              "auth": {"master_key": MASTER_KEY, "key_hash_secret": "responses-store-secret-0123456789"}}  # fmt: skip
    gw = gateway_factory(config)
    admin = AdminClient(gw, MASTER_KEY)
    for team in ("red", "blue"):
        admin.ok("POST", "/teams", {"name": team}, 201)
    keys = {
        team: admin.ok("POST", "/keys", {"name": team, "team": team}, 201)["key"] for team in ("red", "blue")
    }
    wait_keys_loaded(gw, list(keys.values()))
    yield gw, keys
    admin.close()


def _call(gw: Gateway, key: str, path: str, method: str) -> tuple[int, dict[str, str], bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        conn.request(method, path, headers={"authorization": f"Bearer {key}"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("model", ["chat-model", "native-model"])
def test_store_retrieve_continue_delete(
    setup: tuple[Gateway, dict[str, str]], upstream: MockUpstream, model: str
) -> None:
    gw, keys = setup
    with make_client(gw, keys["red"], timeout=20) as red:
        with red.responses.stream(model=model, input="my name is Ada", instructions="be kind") as s:
            for _ in s:
                pass
            first = s.get_final_response()
        assert first.output_text == "mock: my name is Ada"
        again = red.responses.retrieve(first.id)
        assert again.id == first.id and again.output_text == first.output_text and again.model == model
        items = red.responses.input_items.list(first.id)
        assert [(i.type, i.role) for i in items.data] == [("message", "user")]  # type: ignore[union-attr]
        rid = new_request_id()
        second = red.responses.create(
            model=model,
            input="what is my name?",
            previous_response_id=first.id,
            extra_headers={"x-request-id": rid},
        )
        assert second.previous_response_id == first.id
        sent = upstream.wait_for(rid).body_json
        if model == "chat-model":  # the conversation replayed in the hub format (instructions are not
            # carried over, as the reference says)
            assert [(m["role"], m["content"]) for m in sent["messages"]] == [
                ("user", "my name is Ada"), ("assistant", "mock: my name is Ada"), ("user", "what is my name?"),
            ]  # fmt: skip
        else:  # the native upstream gets the conversation itself, not an id it may not know
            assert "previous_response_id" not in sent
            assert [i.get("role") for i in sent["input"]] == ["user", "assistant", "user"]
            assert sent["input"][1]["content"][0]["text"] == "mock: my name is Ada"
        # A third turn replays both earlier ones.
        third = red.responses.create(model=model, input="and again?", previous_response_id=second.id)
        assert third.output_text == "mock: and again?"
        status, _, answer = _call(gw, keys["red"], f"/v1/responses/{first.id}", "DELETE")
        assert status == 200
        assert json.loads(answer) == {"id": first.id, "object": "response.deleted", "deleted": True}
        with pytest.raises(openai.NotFoundError):
            red.responses.retrieve(first.id)
        with pytest.raises(openai.NotFoundError):
            red.responses.create(model=model, input="x", previous_response_id=first.id)


def test_another_teams_response_is_not_found(setup: tuple[Gateway, dict[str, str]]) -> None:
    """The attack: team blue knows (or guesses) team red's response id and tries every route with it."""
    gw, keys = setup
    with make_client(gw, keys["red"], timeout=20) as red:
        secret = red.responses.create(model="chat-model", input="red team secret plan")
    for method, path in (("GET", f"/v1/responses/{secret.id}"), ("GET", f"/v1/responses/{secret.id}/input_items"),
                         ("DELETE", f"/v1/responses/{secret.id}")):  # fmt: skip
        status, _, raw = _call(gw, keys["blue"], path, method)
        assert status == 404, (method, path, raw)
        assert "red team secret" not in raw.decode()
        assert json.loads(raw)["error"]["type"] == "not_found_error"
    body = {"model": "chat-model", "input": "tell me", "previous_response_id": secret.id}
    status, _, answer = post_raw(
        gw, body, {"authorization": f"Bearer {keys['blue']}", "x-api-key": ""}, path="/v1/responses"
    )
    assert status == 404 and json.loads(answer)["error"]["param"] == "previous_response_id"
    assert "red team secret" not in answer.decode()
    # Still there for its owner: blue's DELETE removed nothing.
    with make_client(gw, keys["red"], timeout=20) as red:
        assert red.responses.retrieve(secret.id).output_text == "mock: red team secret plan"


def test_store_false_is_not_kept_and_bad_ids(setup: tuple[Gateway, dict[str, str]]) -> None:
    gw, keys = setup
    with make_client(gw, keys["red"], timeout=20) as red:
        kept_not = red.responses.create(model="chat-model", input="forget me", store=False)
        status, _, _ = _call(gw, keys["red"], f"/v1/responses/{kept_not.id}", "GET")
        assert status == 404
    for path in (
        "/v1/responses/" + "x" * 300,
        "/v1/responses/resp_1/other",
        "/v1/responses/resp_1/input_items?limit=0",
    ):
        status, _, body = _call(gw, keys["red"], path, "GET")
        assert status in (400, 404) and "error" in json.loads(body)
    status, _, _ = _call(gw, keys["red"], "/v1/responses/resp_1/input_items", "DELETE")
    assert status == 405
    status, _, _ = _call(gw, "sk-wrong", "/v1/responses/resp_1", "GET")
    assert status == 401


def test_input_tokens(setup: tuple[Gateway, dict[str, str]]) -> None:
    gw, keys = setup
    auth = {"authorization": f"Bearer {keys['red']}", "x-api-key": ""}
    counts = []
    for text in ("hello", "hello there my good friend, how are you today?"):
        status, _, answer = post_raw(
            gw, {"model": "chat-model", "input": text}, auth, path="/v1/responses/input_tokens"
        )
        assert status == 200, answer
        doc = json.loads(answer)
        assert doc["object"] == "response.input_tokens"
        counts.append(doc["input_tokens"])
    assert 0 < counts[0] < counts[1]
    status, _, answer = post_raw(
        gw, {"model": "chat-model", "input": [{"type": "bogus"}]}, auth, path="/v1/responses/input_tokens"
    )
    assert status == 400 and json.loads(answer)["error"]["param"] == "input[0].type"


def test_retention(upstream: MockUpstream, gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    """A response older than `responses.retention_days` is gone: not readable, not continued."""
    providers = [{"name": "chat", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up"}]
    models = [
        {
            "name": "chat-model",
            "deployments": [{"provider": "chat", "model": "gpt-chat"}],
            "timeouts": TIMEOUTS,
        }
    ]
    gw = gateway_factory(
        {"providers": providers, "models": models, "auth": {"master_key": MASTER_KEY},
         "store": {"url": f"sqlite:///{tmp_path / 'r.db'}"}, "responses": {"retention_days": 1.5 / 86400}}
    )  # fmt: skip
    with make_client(gw, timeout=20) as client:
        kept = client.responses.create(model="chat-model", input="short-lived")
        assert client.responses.retrieve(kept.id).output_text == "mock: short-lived"
        time.sleep(2.0)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(kept.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.create(model="chat-model", input="x", previous_response_id=kept.id)
