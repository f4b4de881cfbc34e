"""Virtual keys, tenants and the admin API end to end, on SQLite and on a real PostgreSQL.

Keys are created through the admin API (or the CLI), used through the openai SDK, and revoked, rotated
or expired; every worker must follow within 1 s. Secrets must never show in answers or logs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from ..services.postgres import running_postgres
from ..upstreams.openai_mock import MockUpstream
from .admin_client import AdminClient
from .conftest import make_client
from .gateway import MASTER_KEY, Gateway, GatewayFactory, free_port, http_get_status, run_cli, write_config

HASH_SECRET = "hash-secret-e2e-5c0ffee5c0ffee"
MODELS = ("gpt-a", "gpt-b", "gpt-c")
PROPAGATION_S = 1.0


PRICE = {"input_per_1m": 0.1, "output_per_1m": 0.2}


def identity_config(upstream: MockUpstream, store_url: str) -> dict[str, Any]:
    return {
        "server": {"access_log": True},
        "providers": [
            {"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "${UP_KEY}"}
        ],
        "models": [
            # Priced: a key with a budget is refused a model with no known price.
            {"name": m, "deployments": [{"provider": "up", "model": "upstream-model-1", "pricing": PRICE}]}
            for m in MODELS
        ],
        "auth": {"master_key": MASTER_KEY, "key_hash_secret": HASH_SECRET},
        "store": {"url": store_url},
    }


@pytest.fixture
def gw(gateway_factory: GatewayFactory, upstream: MockUpstream, store_url: str) -> Gateway:
    return gateway_factory(identity_config(upstream, store_url), workers=2)


@pytest.fixture
def admin(gw: Gateway) -> Iterator[AdminClient]:
    client = AdminClient(gw, MASTER_KEY)
    yield client
    client.close()


def chat_status(gw: Gateway, key: str, model: str = "gpt-a") -> tuple[int, str | None]:
    """Status and error code of one chat call on a fresh connection (so both workers get traffic)."""
    with make_client(gw, key) as client:
        try:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        except openai.APIStatusError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            return exc.status_code, body.get("code")
    return 200, None


def wait_for(gw: Gateway, key: str, status: int, code: str | None = None, model: str = "gpt-a") -> float:
    """Seconds until the answer became `status` (and `code`) for good: the start of the first run of 20
    calls in a row, on fresh connections, that all answer so. Fails when that run began past
    PROPAGATION_S + 1 s (the 20 calls themselves may take longer on a loaded machine)."""
    start = time.monotonic()
    streak = 0
    streak_began = start
    while streak < 20:
        sent = time.monotonic()
        got = chat_status(gw, key, model)
        if got == (status, code):
            if streak == 0:
                streak_began = sent
            streak += 1
        else:
            streak = 0
        began = (sent if streak == 0 else streak_began) - start
        assert began < PROPAGATION_S + 1.0, f"still {got} after {began:.2f}s, want {(status, code)}"
        assert time.monotonic() - start < PROPAGATION_S + 60.0  # bounded, whatever the load
    return streak_began - start


def test_created_key_works_lists_without_secret_and_revocation_reaches_every_worker(
    gw: Gateway, admin: AdminClient
) -> None:
    created = admin.ok(
        "POST",
        "/keys",
        {
            "name": "ci",
            "models": ["gpt-a"],
            "rpm": 60,
            "tpm": 1000,
            "budget_usd": 5.0,
            "metadata": {"env": "ci"},
            "tags": ["bench"],
        },
        201,
    )
    secret = created["key"]
    assert secret.startswith("gk-") and len(secret) > 40
    assert created["prefix"] == secret[:9] and created["status"] == "active"
    assert (created["rpm"], created["tpm"], created["budget_usd"]) == (60, 1000, 5.0)
    wait_for(gw, secret, 200)
    with make_client(gw, secret) as client:
        reply = client.chat.completions.create(model="gpt-a", messages=[{"role": "user", "content": "hello"}])
    assert reply.choices[0].message.content
    assert chat_status(gw, secret, "gpt-b") == (403, "model_not_allowed")

    listed = admin.ok("GET", "/keys")["data"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert secret not in str(listed) and "hash" not in listed[0]
    assert admin.ok("GET", f"/keys/{created['id']}")["prefix"] == created["prefix"]

    revoked = admin.ok("DELETE", f"/keys/{created['id']}")
    assert revoked["status"] == "revoked" and revoked["revoked_at"]
    took = wait_for(gw, secret, 401, "key_revoked")
    assert took < PROPAGATION_S
    assert secret not in gw.output() and MASTER_KEY not in gw.output() and HASH_SECRET not in gw.output()


def test_expired_and_rotated_keys_are_refused_with_the_reason(gw: Gateway, admin: AdminClient) -> None:
    short = admin.ok("POST", "/keys", {"name": "short", "expires_in_s": 1.5}, 201)
    rotating = admin.ok("POST", "/keys", {"name": "rotating"}, 201)
    wait_for(gw, short["key"], 200)
    wait_for(gw, rotating["key"], 200)

    rotated = admin.ok("POST", f"/keys/{rotating['id']}/rotate", {"grace_s": 1.5})
    assert rotated["key"] != rotating["key"] and rotated["id"] == rotating["id"]
    assert rotated["previous_valid_until"] is not None
    wait_for(gw, rotated["key"], 200)
    assert chat_status(gw, rotating["key"]) == (200, None)  # inside the grace period

    time.sleep(1.6)
    assert chat_status(gw, short["key"]) == (401, "key_expired")
    assert chat_status(gw, rotating["key"]) == (401, "key_rotated")
    assert chat_status(gw, rotated["key"]) == (200, None)
    assert admin.ok("GET", f"/keys/{short['id']}")["status"] == "expired"
    assert chat_status(gw, "gk-not-a-real-key-at-all") == (401, "invalid_api_key")


def test_tenancy_narrows_models_and_limits_downward(gw: Gateway, admin: AdminClient) -> None:
    org = admin.ok("POST", "/orgs", {"name": "acme", "models": ["gpt-a", "gpt-b"], "rpm": 1000}, 201)
    team = admin.ok("POST", "/teams", {"name": "search", "org": "acme", "models": ["gpt-a", "gpt-b"]}, 201)
    assert team["parent_id"] == org["id"]
    # Wider than the parent: refused with the field named.
    status, body = admin.call("POST", "/teams", {"name": "wide", "org": "acme", "models": ["gpt-c"]})
    assert status == 422 and body["error"]["param"] == "models"
    status, body = admin.call("POST", "/teams", {"name": "fast", "org": "acme", "rpm": 5000})
    assert status == 422 and body["error"]["param"] == "rpm", body
    user = admin.ok("POST", "/users", {"name": "ana", "team": "search", "email": "ana@example.com"}, 201)
    status, body = admin.call("POST", "/keys", {"name": "k", "user": user["id"], "models": ["gpt-c"]})
    assert status == 422 and body["error"]["param"] == "models"

    # A key without its own list inherits its team's, through its user.
    key = admin.ok("POST", "/keys", {"name": "ana-key", "user": "ana"}, 201)
    assert key["team_id"] == team["id"] and key["user_id"] == user["id"]
    wait_for(gw, key["key"], 200, model="gpt-b")
    assert chat_status(gw, key["key"], "gpt-c") == (403, "model_not_allowed")

    # Narrowing the team later narrows its keys at the next reload.
    admin.ok("PATCH", "/teams/search", {"models": ["gpt-a"]})
    wait_for(gw, key["key"], 403, "model_not_allowed", model="gpt-b")
    assert chat_status(gw, key["key"], "gpt-a") == (200, None)

    # A tenant still in use cannot be deleted; an empty one can.
    status, body = admin.call("DELETE", "/teams/search")
    assert status == 409 and body["error"]["code"] == "tenant_in_use"
    admin.ok("POST", "/teams", {"name": "empty", "org": org["id"]}, 201)
    assert admin.call("DELETE", "/teams/empty") == (204, None)
    assert admin.call("GET", "/teams/empty")[0] == 404


def test_roles_team_admin_viewer_and_inference_keys(gw: Gateway, admin: AdminClient) -> None:
    admin.ok("POST", "/teams", {"name": "red"}, 201)
    admin.ok("POST", "/teams", {"name": "blue"}, 201)
    red_admin = admin.ok("POST", "/keys", {"name": "red-admin", "team": "red", "role": "team_admin"}, 201)
    blue_key = admin.ok("POST", "/keys", {"name": "blue-1", "team": "blue"}, 201)
    viewer = admin.ok("POST", "/keys", {"name": "viewer", "role": "viewer"}, 201)
    inference = admin.ok("POST", "/keys", {"name": "plain"}, 201)
    wait_for(gw, inference["key"], 200)

    red = AdminClient(gw, red_admin["key"])
    try:
        mine = red.ok("POST", "/keys", {"name": "red-1"}, 201)  # defaults to its own team
        assert mine["team_id"] == red_admin["team_id"]
        assert red.call("POST", "/keys", {"name": "x", "team": "blue"})[0] == 403
        assert red.call("POST", "/keys", {"name": "x", "role": "admin"})[0] == 403
        assert red.call("GET", f"/keys/{blue_key['id']}")[0] == 403
        assert red.call("PATCH", f"/keys/{blue_key['id']}", {"name": "stolen"})[0] == 403
        assert red.call("DELETE", f"/keys/{blue_key['id']}")[0] == 403
        assert red.call("PATCH", f"/keys/{mine['id']}", {"team": "blue"})[0] == 403
        assert {k["team_id"] for k in red.ok("GET", "/keys")["data"]} == {red_admin["team_id"]}
        assert red.call("POST", "/teams", {"name": "green"})[0] == 403
        assert red.call("GET", "/orgs")[0] == 403
        assert red.ok("DELETE", f"/keys/{mine['id']}")["status"] == "revoked"
    finally:
        red.close()
    assert admin.ok("GET", f"/keys/{blue_key['id']}")["name"] == "blue-1"

    view = AdminClient(gw, viewer["key"])
    try:
        assert len(view.ok("GET", "/keys")["data"]) == 5
        assert view.call("POST", "/keys", {"name": "nope"})[0] == 403
        assert view.call("DELETE", f"/keys/{blue_key['id']}")[0] == 403
    finally:
        view.close()
    for key, status in ((inference["key"], 403), (None, 401), ("gk-bogus-bogus-bogus", 401)):
        other = AdminClient(gw, key)
        try:
            got, body = other.call("GET", "/keys")
            assert got == status and body["error"]["message"]
        finally:
            other.close()


def test_admin_api_rejects_bad_input_clearly(gw: Gateway, admin: AdminClient) -> None:
    cases: list[tuple[str, str, Any, bytes | None, int, str | None]] = [
        ("POST", "/keys", None, b"{not json", 400, "invalid_json"),
        ("POST", "/keys", None, b"", 400, "invalid_json"),
        ("POST", "/keys", {"name": "x", "colour": "red"}, None, 400, "invalid_body"),
        ("POST", "/keys", {"name": "x", "rpm": -1}, None, 400, "invalid_body"),
        ("POST", "/keys", {"name": "x", "role": "root"}, None, 400, "invalid_body"),
        ("POST", "/keys", {"name": "x", "team": "nope"}, None, 422, "unknown_team"),
        ("POST", "/keys", {"name": "x", "models": ["gpt-z"]}, None, 422, "unknown_model"),
        ("GET", "/keys/key_missing", None, None, 404, "key_not_found"),
        ("PATCH", "/keys/key_missing", {"name": "y"}, None, 404, "key_not_found"),
        ("PUT", "/keys", {}, None, 405, "method_not_allowed"),
        ("GET", "/nothing-here", None, None, 404, "not_found"),
        ("POST", "/users", {"name": "u", "org": "x"}, None, 400, "invalid_body"),
    ]
    for method, path, body, raw, status, code in cases:
        got, answer = admin.call(method, path, body, raw)
        assert (got, answer["error"]["code"]) == (status, code), (method, path, body, raw, answer)
        assert answer["error"]["message"]
    admin.ok("POST", "/orgs", {"name": "dup"}, 201)
    got, answer = admin.call("POST", "/orgs", {"name": "dup"})
    assert got == 409 and "taken" in answer["error"]["message"]


def test_audit_log_and_openapi_document(gw: Gateway, admin: AdminClient) -> None:
    created = admin.ok("POST", "/keys", {"name": "audited"}, 201)
    admin.ok("PATCH", f"/keys/{created['id']}", {"models": ["gpt-a"], "name": "audited-2"})
    rotated = admin.ok("POST", f"/keys/{created['id']}/rotate")
    admin.ok("DELETE", f"/keys/{created['id']}")
    entries = admin.ok("GET", f"/audit?target_id={created['id']}")["data"]
    assert [e["action"] for e in entries] == ["key.revoke", "key.rotate", "key.update", "key.create"]
    assert {e["actor"] for e in entries} == {"master"}
    assert entries[2]["detail"] == {"models": ["gpt-a"], "name": "audited-2"}
    assert created["key"] not in str(entries) and rotated["key"] not in str(entries)

    document = admin.ok("GET", "/openapi.json")
    assert document["openapi"].startswith("3.1")
    assert {"/keys", "/keys/{id}", "/keys/{id}/rotate", "/teams", "/users/{id}", "/audit"} <= set(
        document["paths"]
    )
    create = document["components"]["schemas"]["KeyCreate"]
    assert {"name", "team", "models", "rpm", "tpm", "budget_usd", "expires_at"} <= set(create["properties"])
    assert "key" in document["components"]["schemas"]["KeyCreated"]["properties"]


def test_cli_creates_a_key_a_running_server_accepts(
    gateway_factory: GatewayFactory, upstream: MockUpstream, tmp_path: Any
) -> None:
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    config = identity_config(upstream, store)
    gw = gateway_factory(config)
    path = write_config(config, tmp_path / "cli.yaml")
    done = run_cli(["keys", "--config", str(path), "create", "--name", "from-cli", "--models", "gpt-a,gpt-b"])
    assert done.returncode == 0, done.stderr
    import json

    created = json.loads(done.stdout)
    assert created["created_by"] == "cli" and created["models"] == ["gpt-a", "gpt-b"]
    wait_for(gw, created["key"], 200)
    listed = run_cli(["keys", "--config", str(path), "list"])
    assert created["prefix"] in listed.stdout and created["key"] not in listed.stdout
    revoked = run_cli(["keys", "--config", str(path), "revoke", created["id"]])
    assert revoked.returncode == 0 and '"revoked"' in revoked.stdout
    wait_for(gw, created["key"], 401, "key_revoked")
    bad = run_cli(["keys", "--config", str(path), "create", "--name", "x", "--models", "gpt-zzz"])
    assert bad.returncode == 1 and "gpt-zzz" in bad.stderr and "Traceback" not in bad.stderr
    negative = run_cli(["keys", "--config", str(path), "create", "--name", "x", "--rpm", "-5"])
    assert negative.returncode == 1 and "rpm" in negative.stderr and "Traceback" not in negative.stderr


def test_store_down_at_start_serves_configured_keys_then_recovers(
    gateway_factory: GatewayFactory, upstream: MockUpstream
) -> None:
    port = free_port()
    gw = gateway_factory(
        identity_config(upstream, f"postgresql://gatecore@127.0.0.1:{port}/postgres"), ready_path="/healthz"
    )
    assert http_get_status(gw.port, "/readyz") == 503
    assert chat_status(gw, MASTER_KEY) == (200, None)
    admin = AdminClient(gw, MASTER_KEY)
    got, body = admin.call("GET", "/keys")
    assert got == 503 and body["error"]["code"] == "store_unavailable"
    assert "gatecore@" not in body["error"]["message"]
    with running_postgres(port):
        deadline = time.monotonic() + 10
        while http_get_status(gw.port, "/readyz") != 200:
            assert time.monotonic() < deadline, "the gateway did not pick up the store once it came up"
            time.sleep(0.2)
        created = admin.ok("POST", "/keys", {"name": "after-recovery"}, 201)
        wait_for(gw, created["key"], 200)
