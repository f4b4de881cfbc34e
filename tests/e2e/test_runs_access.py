"""Benchmark runs: who sees which (team_admin: its team's requests only), keys that tag a run through
their `run_id` metadata, a bad `x-gatecore-run-id` (400 in the client API's shape), unknown runs and
bad parameters (404/400 in the admin error shape), metadata gatecore could not use (422), and the
OpenAPI document."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream
from .admin_client import AdminClient
from .anthropic_client import post_raw
from .conftest import make_client, wait_keys_loaded
from .gateway import MASTER_KEY, Gateway, GatewayFactory
from .test_runs import admin_get, runs_config, wait_run


def _chat(gw: Gateway, key: str, run: str | None) -> str:
    rid = f"access-{uuid.uuid4().hex[:10]}"
    headers = {"x-request-id": rid, **({"x-gatecore-run-id": run} if run else {})}
    with make_client(gw, key) as client:
        client.chat.completions.create(
            model="gpt-run", messages=[{"role": "user", "content": "hi"}], extra_headers=headers
        )
    return rid


@pytest.fixture
def teams(
    gateway_factory: GatewayFactory, upstream: MockUpstream, store_url: str
) -> Iterator[tuple[Gateway, dict[str, dict[str, Any]], dict[str, list[str]]]]:
    gw = gateway_factory(runs_config(upstream, store_url))
    admin = AdminClient(gw, MASTER_KEY)
    for team in ("red", "blue"):
        admin.ok("POST", "/teams", {"name": team}, 201)
    specs: dict[str, dict[str, Any]] = {
        "red-1": {"team": "red"},
        "red-run": {"team": "red", "metadata": {"run_id": "key-run"}},
        "blue-1": {"team": "blue"},
        "red-admin": {"team": "red", "role": "team_admin"},
        "viewer": {"role": "viewer"},
    }
    keys = {name: admin.ok("POST", "/keys", {"name": name, **spec}, 201) for name, spec in specs.items()}
    wait_keys_loaded(gw, [k["key"] for k in keys.values()])
    sent: dict[str, list[str]] = {}
    plan = [
        ("red-1", "shared:1"),
        ("red-1", "shared:1"),
        ("blue-1", "shared:1"),
        ("blue-1", "shared:1"),
        ("blue-1", "shared:1"),
        ("blue-1", "blue-only"),
        ("red-run", None),
        ("red-run", None),
        ("red-run", "override"),
    ]
    for name, run in plan:
        sent.setdefault(run or f"<{name}>", []).append(_chat(gw, keys[name]["key"], run))
    yield gw, keys, sent
    admin.close()


def test_team_admins_see_their_teams_requests_and_keys_tag_runs(
    teams: tuple[Gateway, dict[str, dict[str, Any]], dict[str, list[str]]],
) -> None:
    gw, keys, sent = teams
    assert wait_run(gw, "shared:1", 5)["requests"] == 5
    # The key's run_id metadata tags its requests; a request's own header wins over it.
    assert wait_run(gw, "key-run", 2)["requests"] == 2
    assert wait_run(gw, "override", 1)["requests"] == 1
    _, _, body = admin_get(gw, "/runs/key-run/requests?format=json")
    assert {r["request_id"] for r in json.loads(body)["data"]} == set(sent["<red-run>"])
    wait_run(gw, "blue-only", 1)
    status, _, body = admin_get(gw, "/runs")
    assert {r["run_id"]: r["requests"] for r in json.loads(body)["data"]} == {
        "shared:1": 5,
        "blue-only": 1,
        "key-run": 2,
        "override": 1,
    }

    red_admin, viewer = keys["red-admin"]["key"], keys["viewer"]["key"]
    assert wait_run(gw, "shared:1", 5, viewer)["requests"] == 5
    mine = wait_run(gw, "shared:1", 2, red_admin)
    assert mine["requests"] == 2  # the blue team's three are not a red team_admin's to see
    _, _, body = admin_get(gw, "/runs/shared:1/requests?format=json", red_admin)
    red_ids = {rid for rid in sent["shared:1"][:2]}
    assert {r["request_id"] for r in json.loads(body)["data"]} == red_ids
    assert all(r["team_name"] == "red" for r in json.loads(body)["data"])
    status, _, body = admin_get(gw, "/runs", red_admin)
    assert {r["run_id"] for r in json.loads(body)["data"]} == {"shared:1", "key-run", "override"}
    for path in ("/runs/blue-only", "/runs/blue-only/requests?format=csv"):
        status, _, body = admin_get(gw, path, red_admin)
        assert status == 404 and json.loads(body)["error"]["code"] == "run_not_found"

    assert admin_get(gw, "/runs/shared:1", keys["blue-1"]["key"])[0] == 403  # an inference key
    assert admin_get(gw, "/runs", "gk-not-a-key-000000")[0] == 401
    # A percent-encoded id names the same run.
    status, _, body = admin_get(gw, "/runs/shared%3A1")
    assert status == 200 and json.loads(body)["requests"] == 5


def test_unknown_runs_and_bad_parameters(
    teams: tuple[Gateway, dict[str, dict[str, Any]], dict[str, list[str]]],
) -> None:
    gw, keys, _ = teams
    for path in ("/runs/no-such-run", "/runs/no-such-run/requests", "/runs/has%20space", "/runs/x%2Fy"):
        status, content_type, body = admin_get(gw, path)
        assert status == 404 and content_type.startswith("application/json"), path
        error = json.loads(body)["error"]
        assert error["type"] == "not_found_error", path
        # `%2F` is a `/` once decoded: no route has that shape, so it is an unknown admin path.
        assert error["code"] == ("not_found" if "%2F" in path else "run_not_found"), path
    wait_run(gw, "shared:1", 5)
    for path, param in (
        ("/runs/shared:1/requests?format=xml", "format"),
        ("/runs?limit=0", "limit"),
        ("/runs?limit=many", "limit"),
    ):
        status, _, body = admin_get(gw, path)
        error = json.loads(body)["error"]
        assert status == 400 and error["param"] == param and error["type"] == "invalid_request_error"
    # A run_id in a key's metadata must be one gatecore can tag with; log_bodies a boolean.
    admin = AdminClient(gw, MASTER_KEY)
    for method, path, payload in (
        ("POST", "/keys", {"name": "bad-run", "metadata": {"run_id": "not a run id"}}),
        ("PATCH", f"/keys/{keys['red-1']['id']}", {"metadata": {"run_id": "x" * 129}}),
        ("POST", "/keys", {"name": "bad-log", "metadata": {"log_bodies": "yes"}}),
        ("POST", "/teams", {"name": "bad-log", "metadata": {"log_bodies": 1}}),
    ):
        status, answer = admin.call(method, path, payload)
        assert status == 422 and answer["error"]["param"].startswith("metadata."), (path, payload)
    assert admin.ok("GET", f"/keys/{keys['red-1']['id']}")["metadata"] == {}
    document = admin.ok("GET", "/openapi.json")
    assert {"/runs", "/runs/{id}", "/runs/{id}/requests"} <= set(document["paths"])
    assert {"RunSummary", "RunRequest", "Distribution", "RunListed"} <= set(document["components"]["schemas"])
    export = document["paths"]["/runs/{id}/requests"]["get"]["responses"]["200"]["content"]
    assert set(export) == {"application/json", "text/csv"}


def test_bad_run_id_header_is_a_400_in_the_clients_shape(
    teams: tuple[Gateway, dict[str, dict[str, Any]], dict[str, list[str]]],
) -> None:
    gw, keys, _ = teams
    for value in ("x" * 129, "has space", "a/b", "semi;colon", "tab\there"):
        with make_client(gw, keys["red-1"]["key"]) as client, pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model="gpt-run",
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"x-gatecore-run-id": value},
            )
        error = caught.value.body
        assert isinstance(error, dict), value
        assert error["param"] == "x-gatecore-run-id" and error["code"] == "invalid_run_id", value
        status, _, body = post_raw(
            gw,
            {"model": "gpt-run", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
            {"x-gatecore-run-id": value},
        )
        answer = json.loads(body)
        assert status == 400 and answer["type"] == "error", value
        assert answer["error"]["type"] == "invalid_request_error"
        assert "x-gatecore-run-id" in answer["error"]["message"]
        # A bad key is still a 401 first: nothing is said about the request of an unknown caller.
        with make_client(gw, "gk-wrong-000000") as client, pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(
                model="gpt-run",
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"x-gatecore-run-id": value},
            )
