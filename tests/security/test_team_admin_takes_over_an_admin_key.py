"""Issue 17, finding 1: a team_admin took over the gateway through an admin key of its team.

The review's replay: the master key creates `{"name": "ops", "team": "alpha", "role": "admin"}`;
alpha's team_admin rotates it (`{"grace_s": 0}`), gets 200 with the new admin secret, then creates
an org and patches team beta's key with it. `rotate` and `revoke` checked only the caller's team and
`update` only the new role. Now an admin key carries no team (422), and a team_admin may read,
change, rotate or revoke only keys of its team whose role is at most its own, judged on the stored
row inside the write transaction; an admin key a store written before the fix gave a team stays out
of its reach.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from ..e2e.admin_client import AdminClient
from ..e2e.gateway import MASTER_KEY, Gateway, GatewayFactory
from ..upstreams.openai_mock import MockUpstream

HASH_SECRET = "hash-secret-security-17-1"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def gw(gateway_factory: GatewayFactory, upstream: MockUpstream, store: Path) -> Gateway:
    config = {
        "providers": [{"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up"}],
        "models": [{"name": "gpt-a", "deployments": [{"provider": "up", "model": "upstream-model-1"}]}],
        "auth": {"master_key": MASTER_KEY, "key_hash_secret": HASH_SECRET},
        "store": {"url": f"sqlite:///{store}"},
    }
    return gateway_factory(config)


def known(gw: Gateway, secret: str) -> AdminClient:
    """A client of `secret` once the worker knows the key (it answers something other than 401)."""
    client = AdminClient(gw, secret)
    deadline = time.monotonic() + 5
    while client.call("GET", "/openapi.json")[0] == 401:
        assert time.monotonic() < deadline, "the new key never became known"
        time.sleep(0.05)
    return client


def refused(client: AdminClient, method: str, path: str, body: Any = None, status: int = 403) -> None:
    got, answer = client.call(method, path, body)
    assert got == status, (method, path, got, answer)
    assert answer["error"]["message"]


def test_an_admin_key_carries_no_team(gw: Gateway) -> None:
    admin = AdminClient(gw, MASTER_KEY)
    admin.ok("POST", "/teams", {"name": "alpha"}, 201)
    admin.ok("POST", "/users", {"name": "ann", "team": "alpha"}, 201)
    # The replay's first step is now refused, in the API's error format.
    for body in (
        {"name": "ops", "team": "alpha", "role": "admin"},
        {"name": "ops", "user": "ann", "role": "admin"},
    ):
        got, answer = admin.call("POST", "/keys", body)
        assert got == 422 and answer["error"]["code"] == "admin_key_with_team", answer
    team_key = admin.ok("POST", "/keys", {"name": "t", "team": "alpha"}, 201)
    got, answer = admin.call("PATCH", f"/keys/{team_key['id']}", {"role": "admin"})
    assert got == 422 and answer["error"]["code"] == "admin_key_with_team", answer
    # Promoting it while taking it out of the team is fine; so is a global admin key.
    promoted = admin.ok("PATCH", f"/keys/{team_key['id']}", {"role": "admin", "team": None})
    assert (promoted["role"], promoted["team_id"]) == ("admin", None)
    admin.ok("POST", "/keys", {"name": "ops", "role": "admin"}, 201)
    assert [k["name"] for k in admin.ok("GET", "/keys")["data"]] == ["t", "ops"]


def test_a_team_admin_cannot_rotate_revoke_or_change_an_admin_key_of_its_team(
    gw: Gateway, store: Path
) -> None:
    admin = AdminClient(gw, MASTER_KEY)
    alpha = admin.ok("POST", "/teams", {"name": "alpha"}, 201)
    admin.ok("POST", "/teams", {"name": "beta"}, 201)
    beta_key = admin.ok("POST", "/keys", {"name": "beta-1", "team": "beta"}, 201)
    alpha_admin = admin.ok(
        "POST", "/keys", {"name": "alpha-admin", "team": "alpha", "role": "team_admin"}, 201
    )
    ops = admin.ok("POST", "/keys", {"name": "ops", "role": "admin"}, 201)
    # A store written before the fix may hold an admin key with a team: plant one.
    with sqlite3.connect(store) as db:
        db.execute("UPDATE api_keys SET team_id = ? WHERE id = ?", (alpha["id"], ops["id"]))
        db.execute("UPDATE change_counter SET version = version + 1 WHERE id = 1")
    assert admin.ok("GET", f"/keys/{ops['id']}")["team_id"] == alpha["id"]

    team_admin = known(gw, alpha_admin["key"])
    refused(team_admin, "POST", f"/keys/{ops['id']}/rotate", {"grace_s": 0})
    refused(team_admin, "PATCH", f"/keys/{ops['id']}", {"name": "mine"})
    refused(team_admin, "PATCH", f"/keys/{ops['id']}", {"role": None})
    refused(team_admin, "DELETE", f"/keys/{ops['id']}")
    refused(team_admin, "GET", f"/keys/{ops['id']}")
    assert ops["id"] not in {k["id"] for k in team_admin.ok("GET", "/keys")["data"]}
    # Nothing changed: the admin key's secret still works and is the one the master key made.
    after = admin.ok("GET", f"/keys/{ops['id']}")
    assert (after["name"], after["role"], after["prefix"], after["status"]) == (
        "ops",
        "admin",
        ops["prefix"],
        "active",
    )
    ops_client = known(gw, ops["key"])
    assert ops_client.ok("GET", f"/keys/{beta_key['id']}")["name"] == "beta-1"
    # What the rotated secret would have been used for stays out of the team_admin's reach too.
    refused(team_admin, "POST", "/orgs", {"name": "evil"})
    refused(team_admin, "PATCH", f"/keys/{beta_key['id']}", {"name": "stolen"})


def test_a_team_admin_grants_no_role_above_viewer(gw: Gateway) -> None:
    admin = AdminClient(gw, MASTER_KEY)
    admin.ok("POST", "/teams", {"name": "alpha"}, 201)
    alpha_admin = admin.ok(
        "POST", "/keys", {"name": "alpha-admin", "team": "alpha", "role": "team_admin"}, 201
    )
    peer = admin.ok("POST", "/keys", {"name": "peer", "team": "alpha", "role": "team_admin"}, 201)
    team_admin = known(gw, alpha_admin["key"])
    plain = team_admin.ok("POST", "/keys", {"name": "plain"}, 201)
    for role in ("admin", "team_admin"):
        refused(team_admin, "POST", "/keys", {"name": "x", "role": role})
        refused(team_admin, "PATCH", f"/keys/{plain['id']}", {"role": role})
        refused(team_admin, "PATCH", f"/keys/{alpha_admin['id']}", {"role": role})
    refused(team_admin, "PATCH", f"/keys/{plain['id']}", {"role": "admin", "team": None})
    # Keys of its team at most its own role stay its to manage, a peer team_admin included.
    assert team_admin.ok("PATCH", f"/keys/{plain['id']}", {"role": "viewer"})["role"] == "viewer"
    assert team_admin.ok("POST", f"/keys/{peer['id']}/rotate", {"grace_s": 0})["key"] != peer["key"]
    assert team_admin.ok("DELETE", f"/keys/{peer['id']}")["status"] == "revoked"
