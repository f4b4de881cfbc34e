"""The console's session and the access-request API over plain HTTP: cookie flags, CSRF refusals,
and who may ask, see and decide (issue 22's Contract)."""

from __future__ import annotations

import http.client
import re
from typing import Any

from .conftest import Console, api, chat_status


def _session(console: Console, who: str) -> tuple[str, str]:
    """Sign in as `who`: (cookie header value, the page's CSRF token)."""
    status, _ = api(console, "GET", "/ui/")
    assert status == 200

    conn = http.client.HTTPConnection("127.0.0.1", console.gw.port, timeout=20)
    try:
        conn.request(
            "POST",
            "/ui/sign-in",
            body=f"key={console.keys[who]}".encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        response = conn.getresponse()
        response.read()
        cookie = response.getheader("set-cookie") or ""
    finally:
        conn.close()
    assert response.status == 303, response.status
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags and "secure" not in flags  # plain HTTP here
    session = cookie.split(";")[0]
    status, page = api(console, "GET", "/ui/portal", headers={"cookie": session})
    assert status == 200 and isinstance(page, str)
    found = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page)
    assert found is not None
    return session, found.group(1)


def test_ui_serves_html_and_its_assets_under_ui(console: Console) -> None:
    status, page = api(console, "GET", "/ui/")
    assert status == 200 and isinstance(page, str) and page.startswith("<!doctype html>")
    for asset in re.findall(r'(?:src|href)="([^"#][^"]*)"', page):
        assert asset.startswith("/ui/"), asset
        assert api(console, "GET", asset)[0] == 200


def test_a_cookie_change_without_the_csrf_token_is_refused(console: Console) -> None:
    session, token = _session(console, "master")
    body = {"name": "csrf-probe"}
    for headers in ({"cookie": session}, {"cookie": session, "x-csrf-token": "0" * 64}):
        status, answer = api(console, "POST", "/admin/v1/keys", body=body, headers=headers)
        assert status == 403 and answer["error"]["code"] == "csrf_failed"
    # Reads need no token; the same change with it is made.
    assert api(console, "GET", "/admin/v1/keys", headers={"cookie": session})[0] == 200
    status, created = api(
        console, "POST", "/admin/v1/keys", body=body, headers={"cookie": session, "x-csrf-token": token}
    )
    assert status == 201 and created["key"].startswith("gk-")
    # A form posted from another site cannot sign anyone in (login CSRF) or out.
    status, _ = api(
        console,
        "POST",
        "/ui/sign-in",
        body=f"key={console.keys['master']}".encode(),
        headers={"content-type": "application/x-www-form-urlencoded", "origin": "http://evil.example"},
    )
    assert status == 403
    status, _ = api(
        console,
        "POST",
        "/ui/sign-out",
        body=b"csrf=nope",
        headers={"cookie": session, "content-type": "application/x-www-form-urlencoded"},
    )
    assert status == 403
    assert api(console, "GET", "/admin/v1/keys", headers={"cookie": session})[0] == 200  # still signed in
    status, _ = api(
        console,
        "POST",
        "/ui/sign-out",
        body=f"csrf={token}".encode(),
        headers={"cookie": session, "content-type": "application/x-www-form-urlencoded"},
    )
    assert status == 303
    assert api(console, "GET", "/admin/v1/keys", headers={"cookie": session})[0] == 401


def test_a_session_ends_with_its_key(console: Console) -> None:
    status, made = api(
        console, "POST", "/admin/v1/keys", console.keys["master"], {"name": "short-lived", "role": "viewer"}
    )
    assert status == 201
    console.keys["short-lived"] = made["key"]
    session, _ = _session(console, "short-lived")
    assert api(console, "GET", "/admin/v1/keys", headers={"cookie": session})[0] == 200
    assert api(console, "DELETE", f"/admin/v1/keys/{made['id']}", console.keys["master"])[0] == 200
    assert api(console, "GET", "/admin/v1/keys", headers={"cookie": session})[0] == 401


def _ask_status(console: Console, who: str) -> int:
    body = {"models": ["m1"], "prompts": [], "reason": "flood"}
    return api(console, "POST", "/admin/v1/access-requests", console.keys[who], body)[0]


def _ask(console: Console, who: str, models: list[str]) -> dict[str, Any]:
    status, made = api(
        console,
        "POST",
        "/admin/v1/access-requests",
        console.keys[who],
        {"models": models, "prompts": [], "reason": "tests"},
    )
    assert status == 201 and made["status"] == "pending", made
    return dict(made)


def test_access_requests_follow_the_contract_and_the_team_scope(console: Console) -> None:
    mine = _ask(console, "dev_b", ["m2"])
    other = _ask(console, "dev_a", ["m2"])
    # A requester sees its own only; a team_admin its team's; the master key all.
    listed = api(console, "GET", "/admin/v1/access-requests", console.keys["dev_b"])[1]["data"]
    assert {r["id"] for r in listed} == {r["id"] for r in listed if r["requester"] == console.ids["dev_b"]}
    assert mine["id"] in {r["id"] for r in listed}
    assert api(console, "GET", f"/admin/v1/access-requests/{other['id']}", console.keys["dev_b"])[0] == 404
    team_a = api(console, "GET", "/admin/v1/access-requests", console.keys["team_admin_a"])[1]["data"]
    assert other["id"] in {r["id"] for r in team_a} and mine["id"] not in {r["id"] for r in team_a}
    # Neither the requester, a viewer, nor another team's team_admin may decide.
    for who in ("dev_b", "viewer_a", "team_admin_a"):
        status, _ = api(console, "POST", f"/admin/v1/access-requests/{mine['id']}/approve", console.keys[who])
        assert status in (403, 404), who
    status, approved = api(
        console,
        "POST",
        f"/admin/v1/access-requests/{mine['id']}/approve",
        console.keys["master"],
        {"rpm": 100},
    )
    assert status == 200 and approved["status"] == "approved" and "key" not in approved
    assert (
        api(console, "POST", f"/admin/v1/access-requests/{mine['id']}/reject", console.keys["master"], {})[0]
        == 409
    )
    # The requester reads the key once, then only its prefix.
    first = api(console, "GET", f"/admin/v1/access-requests/{mine['id']}", console.keys["dev_b"])[1]
    assert first["key"].startswith(first["prefix"])
    assert chat_status(console, first["key"], "m2") == 200
    assert chat_status(console, first["key"], "m1") == 403  # the key is for what was asked
    again = api(console, "GET", f"/admin/v1/access-requests/{mine['id']}", console.keys["dev_b"])[1]
    assert "key" not in again and again["prefix"] == first["prefix"]
    # The admin reading it never sees the key.
    assert (
        "key" not in api(console, "GET", f"/admin/v1/access-requests/{mine['id']}", console.keys["master"])[1]
    )
    # Rejected, with a reason; both decisions are audited.
    status, rejected = api(
        console,
        "POST",
        f"/admin/v1/access-requests/{other['id']}/reject",
        console.keys["team_admin_a"],
        {"reason": "no"},
    )
    assert status == 200 and rejected["status"] == "rejected" and rejected["decision_reason"] == "no"
    audit = api(console, "GET", "/admin/v1/audit?limit=50", console.keys["master"])[1]["data"]
    actions = {(a["action"], a["target_id"]) for a in audit}
    assert {("access_request.approve", mine["id"]), ("access_request.reject", other["id"])} <= actions
    # Bad bodies get the API's own errors.
    status, error = api(
        console,
        "POST",
        "/admin/v1/access-requests",
        console.keys["dev_b"],
        {"models": ["nope"], "reason": "x"},
    )
    assert status == 422 and error["error"]["code"] == "unknown_model"
    # One requester's open requests are bounded.
    statuses = [_ask_status(console, "team_b_service") for _ in range(21)]
    assert statuses == [201] * 20 + [409]
    status, error = api(console, "POST", "/admin/v1/access-requests", console.keys["dev_b"], {"reason": "x"})
    assert status == 422 and error["error"]["code"] == "nothing_asked"
