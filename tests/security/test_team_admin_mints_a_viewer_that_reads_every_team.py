"""Issue 17, finding 2: a team_admin read every team through a viewer key.

The review's replay: red's team_admin creates a `viewer` key (or PATCHes its own key to `viewer`), and
viewers read everything: every team's keys, the whole audit log, other teams' usage and runs. Now a
key that belongs to a team sees that team only, whatever its role; the viewer a team_admin makes
belongs to its team (a team-less one is refused), and only the master key or an admin mints a global
viewer, which still reads everything.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from ..e2e.admin_client import AdminClient
from ..e2e.conftest import make_client, wait_keys_loaded
from ..e2e.gateway import MASTER_KEY, Gateway, GatewayFactory
from ..upstreams.openai_mock import MockUpstream


@pytest.fixture
def gw(gateway_factory: GatewayFactory, upstream: MockUpstream, store_url: str) -> Gateway:
    config = {
        "providers": [{"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up"}],
        "models": [{"name": "gpt-a", "deployments": [{"provider": "up", "model": "upstream-model-1"}]}],
        "auth": {"master_key": MASTER_KEY, "key_hash_secret": "hash-secret-security-17-2"},
        "store": {"url": store_url},
        "ledger": {"flush_interval_s": 0.05},
    }
    return gateway_factory(config)


def chat(gw: Gateway, key: str, run: str) -> None:
    headers = {"x-request-id": f"f2-{uuid.uuid4().hex[:10]}", "x-gatecore-run-id": run}
    with make_client(gw, key) as client:
        client.chat.completions.create(
            model="gpt-a", messages=[{"role": "user", "content": "hi"}], extra_headers=headers
        )


def until(client: AdminClient, path: str, done: Any) -> Any:
    """The answer of GET `path` once `done(answer)` holds (ledger rows are written in batches)."""
    deadline = time.monotonic() + 15
    while True:
        status, answer = client.call("GET", path)
        if status == 200 and done(answer):
            return answer
        assert time.monotonic() < deadline, (path, status, answer)
        time.sleep(0.1)


def assert_sees_red_only(viewer: AdminClient, red_id: str) -> None:
    """What the review read through the viewer key, each now confined to team red."""
    assert {k["team_id"] for k in viewer.ok("GET", "/keys")["data"]} == {red_id}
    assert [t["name"] for t in viewer.ok("GET", "/teams")["data"]] == ["red"]
    assert viewer.call("GET", "/teams/blue")[0] == 403
    assert viewer.call("GET", "/users/bob")[0] == 403
    assert [u["name"] for u in viewer.ok("GET", "/users")["data"]] == ["ann"]
    for path in ("/audit", "/orgs", "/deployments"):
        got, answer = viewer.call("GET", path)
        assert got == 403 and answer["error"]["message"], (path, got, answer)
    usage = viewer.ok("GET", "/usage?group_by=team")["data"]
    assert [(g["name"], g["requests"]) for g in usage] == [("red", 1)]
    assert viewer.ok("GET", "/runs/shared")["requests"] == 1
    assert viewer.call("GET", "/runs/blue-only")[0] == 404
    assert {r["run_id"] for r in viewer.ok("GET", "/runs")["data"]} == {"shared"}
    csv = viewer.call("GET", "/runs/shared/requests?format=json")[1]
    assert {r["team_name"] for r in csv["data"]} == {"red"}


def test_a_team_admins_viewer_sees_its_team_only(gw: Gateway) -> None:
    admin = AdminClient(gw, MASTER_KEY)
    org = admin.ok("POST", "/orgs", {"name": "acme"}, 201)
    red = admin.ok("POST", "/teams", {"name": "red", "org": org["id"]}, 201)
    admin.ok("POST", "/teams", {"name": "blue", "org": org["id"]}, 201)
    admin.ok("POST", "/users", {"name": "ann", "team": "red"}, 201)
    admin.ok("POST", "/users", {"name": "bob", "team": "blue"}, 201)
    red_key = admin.ok("POST", "/keys", {"name": "red-1", "team": "red"}, 201)
    blue_key = admin.ok("POST", "/keys", {"name": "blue-1", "team": "blue"}, 201)
    red_admin = admin.ok("POST", "/keys", {"name": "red-admin", "team": "red", "role": "team_admin"}, 201)
    global_viewer = admin.ok("POST", "/keys", {"name": "auditor", "role": "viewer"}, 201)
    wait_keys_loaded(gw, [k["key"] for k in (red_key, blue_key, red_admin, global_viewer)])
    chat(gw, red_key["key"], "shared")
    chat(gw, blue_key["key"], "shared")
    chat(gw, blue_key["key"], "blue-only")
    until(admin, "/runs", lambda a: len(a["data"]) == 2 and sum(r["requests"] for r in a["data"]) == 3)

    team_admin = AdminClient(gw, red_admin["key"])
    # A team_admin cannot mint a global viewer: a key it makes belongs to its team, asked or not.
    got, answer = team_admin.call("POST", "/keys", {"name": "spy", "role": "viewer", "team": "blue"})
    assert got == 403, answer
    minted = team_admin.ok("POST", "/keys", {"name": "spy", "role": "viewer", "team": None}, 201)
    assert minted["team_id"] == red["id"]
    wait_keys_loaded(gw, [minted["key"]])
    assert_sees_red_only(AdminClient(gw, minted["key"]), red["id"])

    # Its own key patched into a viewer is still a key of team red, and reads as one.
    got, answer = team_admin.call("PATCH", f"/keys/{red_admin['id']}", {"role": "viewer", "team": None})
    assert got == 403, answer
    assert team_admin.ok("PATCH", f"/keys/{red_admin['id']}", {"role": "viewer"})["role"] == "viewer"
    deadline = time.monotonic() + 5  # (until the worker's key table has the change)
    while team_admin.call("PATCH", "/keys/key_missing", {"name": "x"})[0] != 403:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert_sees_red_only(team_admin, red["id"])

    # The master key's global viewer still reads everything.
    auditor = AdminClient(gw, global_viewer["key"])
    assert len(auditor.ok("GET", "/keys")["data"]) == 5
    assert {g["name"] for g in auditor.ok("GET", "/usage?group_by=team")["data"]} == {"red", "blue"}
    assert auditor.ok("GET", "/runs/shared")["requests"] == 2
    assert auditor.ok("GET", "/audit")["data"]
    assert json.dumps(auditor.ok("GET", "/orgs")["data"]).count("acme") == 1
