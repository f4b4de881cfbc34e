"""The Responses API's `prompt` parameter on gatecore's stored prompts (issue 21): the official `openai`
SDK's `responses.create(prompt={...})` runs a published template, its messages ahead of the request's
input, on its model, recorded under the prompt and version; a missing variable is a 400 naming it;
another team's prompt is a 404 as if it did not exist."""

from __future__ import annotations

import uuid
from typing import Any

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream
from .admin_client import AdminClient
from .conftest import make_client, wait_keys_loaded
from .gateway import MASTER_KEY, GatewayFactory
from .ledger_store import LedgerStore
from .prompt_helpers import prompts_config, template


def test_responses_prompt_runs_a_stored_template(
    gateway_factory: GatewayFactory, upstream: MockUpstream, tmp_path: Any
) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    gw = gateway_factory(prompts_config(upstream, store_url))
    admin = AdminClient(gw, MASTER_KEY)
    admin.ok("POST", "/prompts", template("topics", "Write about {{ topic }}."), 201)
    admin.ok("POST", "/prompts", template("topics", "Write two lines about {{ topic }}."), 201)
    admin.ok("POST", "/teams", {"name": "blue"}, 201)
    admin.ok("POST", "/prompts", {**template("blue-only", "Hi {{ topic }}."), "team": "blue"}, 201)
    admin.ok("POST", "/teams", {"name": "red"}, 201)
    red = admin.ok("POST", "/keys", {"name": "red-app", "team": "red"}, 201)
    wait_keys_loaded(gw, [red["key"]])

    rid = f"rp-{uuid.uuid4().hex[:10]}"
    with make_client(gw) as client:
        response = client.responses.create(
            prompt={"id": "topics", "variables": {"topic": "cats"}},
            input="and keep it short",
            extra_headers={"x-request-id": rid},
        )
        assert response.status == "completed" and response.output_text
        # The production label is version 1; version 2 on request.
        pinned = f"rp-{uuid.uuid4().hex[:10]}"
        client.responses.create(
            prompt={
                "id": "topics",
                "version": "2",
                "variables": {"topic": {"type": "input_text", "text": "dogs"}},
            },
            extra_headers={"x-request-id": pinned},
        )
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(prompt={"id": "topics", "variables": {}})
        assert isinstance(info.value.body, dict) and "topic" in str(info.value.body.get("param"))
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="gpt-b", prompt={"id": "topics", "variables": {"topic": "x"}})
        assert isinstance(info.value.body, dict) and info.value.body["param"] == "model"
    sent = upstream.wait_for(rid).body_json
    assert sent["model"] == "up-gpt-a"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Write about cats."},
        {"role": "user", "content": "and keep it short"},
    ]
    assert upstream.wait_for(pinned).body_json["messages"][1] == {
        "role": "user",
        "content": "Write two lines about dogs.",
    }
    # Another team's prompt does not exist for this key.
    with make_client(gw, red["key"]) as client, pytest.raises(openai.NotFoundError):
        client.responses.create(prompt={"id": "blue-only", "variables": {"topic": "x"}})
    ledger = LedgerStore(store_url)
    try:
        rows = {row["request_id"]: row for row in ledger.wait_rows({rid, pinned})}
    finally:
        ledger.close()
    assert (rows[rid]["endpoint"], rows[rid]["prompt_name"], rows[rid]["prompt_version"]) == (
        "responses",
        "topics",
        1,
    )
    assert rows[pinned]["prompt_version"] == 2


def test_responses_prompt_split_is_sticky_per_user(
    gateway_factory: GatewayFactory, upstream: MockUpstream, tmp_path: Any
) -> None:
    """A split label with `sticky: user`: one Responses caller's `user` (or `safety_identifier`)
    always runs one version, as a published call's does; across users both versions run."""
    gw = gateway_factory(prompts_config(upstream, f"sqlite:///{tmp_path / 'store.db'}"))
    admin = AdminClient(gw, MASTER_KEY)
    admin.ok("POST", "/prompts", template("split", "one {{ topic }}"), 201)
    admin.ok("POST", "/prompts", template("split", "two {{ topic }}"), 201)
    admin.ok("PUT", "/prompts/split/labels/production", {"versions": {"1": 0.5, "2": 0.5}, "sticky": "user"})

    def version_run(client: openai.OpenAI, **who: str) -> int:
        rid = f"rs-{uuid.uuid4().hex[:10]}"
        client.responses.create(
            prompt={"id": "split", "variables": {"topic": "t"}},
            extra_headers={"x-request-id": rid},
            extra_body=who,
        )
        content = upstream.wait_for(rid).body_json["messages"][1]["content"]
        return {"one t": 1, "two t": 2}[content]

    per_user: dict[str, int] = {}
    with make_client(gw) as client:
        for user in (f"user-{i}" for i in range(12)):
            got = {version_run(client, user=user) for _ in range(4)}
            assert len(got) == 1, (user, got)
            per_user[user] = got.pop()
        # `safety_identifier` (OpenAI's successor of `user`) picks like the same `user` would.
        for user, version in list(per_user.items())[:4]:
            assert version_run(client, safety_identifier=user) == version
    assert set(per_user.values()) == {1, 2}
