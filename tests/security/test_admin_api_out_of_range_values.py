"""Issue 17: admin API bodies that crashed the server (500) or committed half a change.

The fuzzer's three crash causes, replayed one by one: `{"team": null}` on an org (AttributeError in
the repository), an rpm of 2^63 (OverflowError in SQLite), a 2^64 integer inside metadata (TypeError
in the JSON encoder); and the low finding `rotate {"grace_s": 1e300}`, which answered 500 after
committing a grace period no datetime can hold, so every later key listing answered 500 too. Each is
now a 400 in the API's error format, naming the field, with nothing written.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..e2e.admin_client import AdminClient
from ..e2e.gateway import MASTER_KEY, Gateway, GatewayFactory, standard_config
from ..upstreams.openai_mock import MockUpstream, RefusedPort


@pytest.fixture
def admin(gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort) -> AdminClient:
    gateway: Gateway = gateway_factory(standard_config(upstream.base_url, refused.base_url))
    return AdminClient(gateway, MASTER_KEY)


def refused_400(admin: AdminClient, method: str, path: str, body: Any, param: str | None) -> dict[str, Any]:
    status, answer = admin.call(method, path, body)
    assert status == 400, (status, answer)
    error: dict[str, Any] = answer["error"]
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param, error
    return error


def test_a_null_parent_field_the_level_does_not_have(admin: AdminClient) -> None:
    admin.ok("POST", "/orgs", {"name": "acme"}, status=201)
    refused_400(admin, "PATCH", "/orgs/acme", {"team": None}, "team")
    refused_400(admin, "PATCH", "/orgs/acme", {"org": None}, "org")
    team = admin.ok("POST", "/teams", {"name": "alpha", "org": "acme"}, status=201)
    refused_400(admin, "PATCH", "/teams/alpha", {"team": None}, "team")
    admin.ok("POST", "/users", {"name": "ann", "team": "alpha"}, status=201)
    refused_400(admin, "PATCH", "/users/ann", {"org": None}, "org")
    refused_400(admin, "POST", "/users", {"name": "bob", "org": "acme"}, "org")
    # What each level does have still changes.
    assert admin.ok("PATCH", "/teams/alpha", {"org": None})["parent_id"] is None
    assert admin.ok("GET", f"/teams/{team['id']}")["name"] == "alpha"


@pytest.mark.parametrize("field", ["rpm", "tpm", "max_parallel"])
def test_counts_beyond_64_bits(admin: AdminClient, field: str) -> None:
    refused_400(admin, "POST", "/orgs", {"name": "big", field: 2**63}, field)
    refused_400(admin, "POST", "/keys", {"name": "big", field: 2**63}, field)
    key = admin.ok("POST", "/keys", {"name": "small"}, status=201)
    refused_400(admin, "PATCH", f"/keys/{key['id']}", {field: 2**63}, field)
    assert admin.ok("GET", "/orgs")["data"] == []
    # JSON has one number type: 5.0 is the integer 5.
    assert admin.ok("POST", "/orgs", {"name": "five", field: 5.0}, status=201)[field] == 5


def test_an_integer_beyond_64_bits_in_metadata(admin: AdminClient) -> None:
    refused_400(admin, "POST", "/orgs", {"name": "m", "metadata": {"n": [2**64]}}, "metadata")
    refused_400(admin, "POST", "/keys", {"name": "m", "metadata": {"n": -(2**63) - 1}}, "metadata")
    nested: Any = 1
    for _ in range(40):
        nested = [nested]
    refused_400(admin, "POST", "/orgs", {"name": "m", "metadata": {"deep": nested}}, "metadata")
    assert admin.ok("GET", "/orgs")["data"] == []
    ok = admin.ok("POST", "/orgs", {"name": "m", "metadata": {"n": 2**63 - 1}}, status=201)
    assert ok["metadata"] == {"n": 2**63 - 1}


def test_a_rotation_grace_no_time_can_hold(admin: AdminClient) -> None:
    key = admin.ok("POST", "/keys", {"name": "rot"}, status=201)
    before = admin.ok("GET", f"/keys/{key['id']}")
    refused_400(admin, "POST", f"/keys/{key['id']}/rotate", {"grace_s": 1e300}, "grace_s")
    # Nothing was committed: same prefix, no grace period, and the listing still answers.
    after = admin.ok("GET", f"/keys/{key['id']}")
    assert after["prefix"] == before["prefix"] and after["previous_valid_until"] is None
    assert len(admin.ok("GET", "/keys")["data"]) == 1
    refused_400(admin, "POST", "/keys", {"name": "x", "expires_in_s": 1e300}, "expires_in_s")
    refused_400(admin, "POST", "/keys", {"name": "x", "budget_usd": 1e300}, "budget_usd")
    status, answer = admin.call("POST", "/keys", {"name": "x", "expires_at": "0001-01-01T00:00:00+23:59"})
    assert status == 422 and answer["error"]["param"] == "expires_at"
    assert admin.ok("POST", f"/keys/{key['id']}/rotate", {"grace_s": 60})["key"]
