"""Guard definitions through the admin API (issue 20): config guards listed read-only; stored guards
created, changed and deleted, reaching every worker; bounds and Rust-compiled regexes checked;
secrets never shown back or audited; a team_admin confined to its own team's in-process guards, and
another team's guard refused on attach and at request time."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .admin_client import AdminClient
from .conftest import make_client, new_request_id, wait_keys_loaded
from .gateway import MASTER_KEY, Gateway, running_gateway, standard_config, write_config

EMAIL = "ann.lee@example.com"
CONFIG_GUARD = {"name": "cfg-pii", "kind": "pii", "entities": {"us_ssn": "block"}}


@pytest.fixture(scope="module")
def gw(
    upstream: MockUpstream, refused: RefusedPort, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("guard-admin")
    config = standard_config(upstream.base_url, refused.base_url)
    config["guardrails"] = [CONFIG_GUARD]
    config["store"] = {"poll_interval_s": 0.1}
    path = write_config(config, workdir / "gatecore.yaml")
    with running_gateway(["--config", str(path), "--workers", "2"], workdir, config=config) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def admin(gw: Gateway) -> AdminClient:
    return AdminClient(gw, MASTER_KEY)


def sent_text(gw: Gateway, upstream: MockUpstream, model: str, text: str, key: str = MASTER_KEY) -> str:
    """What the upstream received of one chat request (a fresh connection each: either worker)."""
    rid = new_request_id()
    with make_client(gw, key) as client:
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": text}], extra_headers={"x-request-id": rid}
        )
    content: str = upstream.wait_for(rid).body_json["messages"][0]["content"]
    return content


def settles(check: Any, times: int = 8, within_s: float = 10.0) -> None:
    """`check()` holds for `times` requests in a row (both workers serve some), within the bound."""
    deadline = time.monotonic() + within_s
    streak = 0
    while streak < times:
        assert time.monotonic() < deadline, "the change did not reach every worker in time"
        streak = streak + 1 if check() else 0
        if not streak:
            time.sleep(0.05)


def test_config_guards_listed_read_only(admin: AdminClient) -> None:
    listed = {g["name"]: g for g in admin.ok("GET", "/guardrails")["data"]}
    assert listed["cfg-pii"]["read_only"] is True and listed["cfg-pii"]["source"] == "config"
    status, body = admin.call("PUT", "/guardrails/cfg-pii", {"kind": "pii"})
    assert status == 409, body
    assert admin.call("DELETE", "/guardrails/cfg-pii")[0] == 409
    status, body = admin.call("POST", "/guardrails", {"name": "cfg-pii", "kind": "pii"})
    assert status == 409 and body["error"]["code"] == "guardrail_exists"


def test_stored_default_reaches_every_worker(gw: Gateway, admin: AdminClient, upstream: MockUpstream) -> None:
    model = "gpt-test"
    text = f"write to {EMAIL}"
    assert sent_text(gw, upstream, model, text) == text
    admin.ok(
        "POST",
        "/guardrails",
        {"name": "api-default", "kind": "pii", "default": True, "entities": {"email": "redact"}},
        201,
    )
    settles(lambda: sent_text(gw, upstream, model, text) == "write to [EMAIL]")
    changed = admin.ok(
        "PUT", "/guardrails/api-default", {"kind": "pii", "default": True, "entities": {"email": "mask"}}
    )
    assert changed["spec"]["entities"] == {"email": "mask"} and changed["read_only"] is False
    settles(lambda: sent_text(gw, upstream, model, text) == "write to " + "*" * (len(EMAIL) - 4) + ".com")
    admin.ok("DELETE", "/guardrails/api-default", status=204)
    settles(lambda: sent_text(gw, upstream, model, text) == text)
    actions = [e["action"] for e in admin.ok("GET", "/audit?target_id=api-default")["data"]]
    assert actions == ["guardrail.delete", "guardrail.update", "guardrail.create"]


def test_bounds_and_rust_regex_checks(admin: AdminClient) -> None:
    bad_regex = {"name": "bad-re", "kind": "pii", "custom": [{"name": "order", "pattern": "(unclosed"}]}
    status, body = admin.call("POST", "/guardrails", bad_regex)
    assert status == 422 and "custom" in body["error"]["message"], body
    too_long = {"name": "long-re", "kind": "pii", "custom": [{"name": "x", "pattern": "a" * 2001}]}
    assert admin.call("POST", "/guardrails", too_long)[0] == 400
    assert admin.call("POST", "/guardrails", {"name": "bad name!", "kind": "pii"})[0] == 400
    assert admin.call("POST", "/guardrails", {"name": "x" * 101, "kind": "pii"})[0] == 400
    assert (
        admin.call("POST", "/guardrails", {"name": "k", "kind": "pii", "deny_list": ["w"] * 1001})[0] == 400
    )
    status, body = admin.call(
        "POST", "/guardrails", {"name": "dna", "kind": "pii", "entities": {"dna": "redact"}}
    )
    assert status == 422 and "unknown entity type" in body["error"]["message"]
    hook = {
        "name": "h",
        "kind": "webhook",
        "url": "http://127.0.0.1:9/x",
        "headers": {"X-A": "v\r\nInjected: 1"},
    }
    assert admin.call("POST", "/guardrails", hook)[0] == 422
    status, body = admin.call(
        "POST", "/guardrails", {"name": "rr", "kind": "prompt_injection", "action": "reroute"}
    )
    assert status == 422 and "reroute_to" in body["error"]["message"]


def test_secrets_never_shown_or_audited(admin: AdminClient) -> None:
    secret = "sk-mod-" + uuid.uuid4().hex
    admin.ok(
        "POST",
        "/guardrails",
        {
            "name": "mod-api",
            "kind": "moderation",
            "url": "http://127.0.0.1:9/v1/moderations",
            "api_key": secret,
            "headers": {"X-Token": secret},
            "apply_to": ["input"],
        },
        201,
    )
    shown = admin.ok("GET", "/guardrails/mod-api")
    assert shown["spec"]["api_key"] == "[hidden]" and shown["spec"]["headers"] == {"X-Token": "[hidden]"}
    for path in ("/guardrails", "/guardrails/mod-api", "/audit?target_id=mod-api"):
        assert secret not in str(admin.ok("GET", path))
    admin.ok("DELETE", "/guardrails/mod-api", status=204)


def test_team_admin_confined_to_its_team(gw: Gateway, admin: AdminClient, upstream: MockUpstream) -> None:
    red = admin.ok("POST", "/teams", {"name": "g-red"}, 201)["id"]
    blue = admin.ok("POST", "/teams", {"name": "g-blue"}, 201)["id"]
    red_admin = AdminClient(
        gw, admin.ok("POST", "/keys", {"name": "ra", "team": red, "role": "team_admin"}, 201)["key"]
    )
    blue_admin = AdminClient(
        gw, admin.ok("POST", "/keys", {"name": "ba", "team": blue, "role": "team_admin"}, 201)["key"]
    )
    pii = {"kind": "pii", "entities": {"email": "redact"}}
    # What a team_admin may not define: a global guard, another team's, a default, an external kind
    # (the gateway would POST texts to a URL of the caller's choosing), a reroute.
    refused = [
        {"name": "r1", "team": blue, **pii},
        {"name": "r2", "default": True, **pii},
        {"name": "r3", "kind": "webhook", "url": "http://169.254.169.254/latest"},
        {"name": "r4", "kind": "prompt_injection", "action": "reroute", "reroute_to": "gpt-test"},
    ]
    for body in refused:
        status, answer = red_admin.call("POST", "/guardrails", body)
        assert status == 403, (body, answer)
    created = red_admin.ok("POST", "/guardrails", {"name": "red-pii", **pii}, 201)
    assert created["team"] == red
    # Blue neither sees it nor may change it nor attach it.
    assert "red-pii" not in [g["name"] for g in blue_admin.ok("GET", "/guardrails")["data"]]
    assert blue_admin.call("GET", "/guardrails/red-pii")[0] == 404
    assert blue_admin.call("PUT", "/guardrails/red-pii", pii)[0] == 404
    assert blue_admin.call("DELETE", "/guardrails/red-pii")[0] == 404
    status, _ = blue_admin.call("POST", "/keys", {"name": "b-steal", "metadata": {"guardrails": ["red-pii"]}})
    assert status == 403
    # A blue key that names it anyway (the master attached it) is refused at request time.
    blue_key = admin.ok(
        "POST", "/keys", {"name": "b-inf", "team": blue, "metadata": {"guardrails": ["red-pii"]}}, 201
    )
    red_key = red_admin.ok("POST", "/keys", {"name": "r-inf", "metadata": {"guardrails": ["red-pii"]}}, 201)
    wait_keys_loaded(gw, [blue_key["key"], red_key["key"]])
    settles(
        lambda: sent_text(gw, upstream, "gpt-test", f"to {EMAIL}", red_key["key"]) == "to [EMAIL]", times=4
    )
    with make_client(gw, blue_key["key"]) as client, pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": f"to {EMAIL}"}]
        )
    assert err.value.code == "guardrail_blocked" and "another team" in str(err.value)
    # Attached: not deleted (its keys would be refused); detached, it goes.
    status, body = red_admin.call("DELETE", "/guardrails/red-pii")
    assert status == 409 and body["error"]["code"] == "guardrail_in_use"
    viewer = AdminClient(
        gw, admin.ok("POST", "/keys", {"name": "rv", "team": red, "role": "viewer"}, 201)["key"]
    )
    assert viewer.call("PUT", "/guardrails/red-pii", pii)[0] == 403


def test_stored_pii_guard_scrubs_logged_bodies(
    gw: Gateway, admin: AdminClient, upstream: MockUpstream
) -> None:
    badge = "EMP-" + str(uuid.uuid4().int)[:6]
    custom = [{"name": "employee_id", "pattern": r"EMP-\d{6}", "action": "tokenize"}]
    admin.ok("POST", "/guardrails", {"name": "badges", "kind": "pii", "custom": custom}, 201)
    key = admin.ok(
        "POST", "/keys", {"name": "loud", "metadata": {"log_bodies": True, "guardrails": ["badges"]}}, 201
    )
    wait_keys_loaded(gw, [key["key"]])
    rid = new_request_id()
    with make_client(gw, key["key"]) as client:
        answer = client.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": f"badge {badge}"}],
            extra_headers={"x-request-id": rid},
        )
    assert upstream.wait_for(rid).body_json["messages"][0]["content"] == "badge <EMPLOYEE_ID_1>"
    assert answer.choices[0].message.content == f"mock: badge {badge}"  # restored for the client
    line = gw.wait_access_log(rid)
    # The body log's redactor knows the stored guard's pattern: the restored value is not logged.
    assert "[EMPLOYEE_ID]" in line["response_body"] and badge not in str(line)
