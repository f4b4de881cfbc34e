"""The cache's admin routes (issue 19): figures, purge by namespace, model and age, and the attack: a
team_admin purging (or reading) another team's cache."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .admin_client import AdminClient
from .conftest import make_client, wait_keys_loaded
from .gateway import MASTER_KEY, Gateway, GatewayFactory, running_gateway, standard_config, write_config
from .raw_http import post_json

CACHE = "x-gatecore-cache"


@pytest.fixture(scope="module")
def gw(
    upstream: MockUpstream, refused: RefusedPort, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("cache-admin")
    config = standard_config(upstream.base_url, refused.base_url)
    config["cache"] = {"enabled": True}
    path = write_config(config, workdir / "gatecore.yaml")
    with running_gateway(["--config", str(path)], workdir, config=config) as gateway:
        yield gateway


def state(client: openai.OpenAI, text: str, model: str = "gpt-test") -> str:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], temperature=0
    )
    return raw.headers[CACHE]


@pytest.fixture(scope="module")
def tenants(gw: Gateway) -> dict[str, Any]:
    admin = AdminClient(gw, MASTER_KEY)
    out: dict[str, Any] = {}
    for team in ("purge-a", "purge-b"):
        out[team] = admin.ok("POST", "/teams", {"name": team}, 201)["id"]
        out[f"{team}-key"] = admin.ok("POST", "/keys", {"name": f"{team}-k", "team": team}, 201)["key"]
        body = {"name": f"{team}-ta", "team": team, "role": "team_admin"}
        out[f"{team}-admin"] = admin.ok("POST", "/keys", body, 201)["key"]
    out["viewer"] = admin.ok(
        "POST", "/keys", {"name": "purge-viewer", "team": "purge-a", "role": "viewer"}, 201
    )["key"]
    wait_keys_loaded(gw, [out["purge-a-key"], out["purge-b-key"]])
    return out


def test_team_admin_purges_only_its_team(gw: Gateway, tenants: dict[str, Any]) -> None:
    text = f"purge me {uuid.uuid4().hex}"
    with make_client(gw, tenants["purge-a-key"]) as a, make_client(gw, tenants["purge-b-key"]) as b:
        for client in (a, b):
            assert state(client, text) == "miss"
            assert state(client, text) == "hit"
        team_admin = AdminClient(gw, tenants["purge-a-admin"])
        # The attack: team A's admin names team B's namespace, or the global one.
        for namespace in (f"team:{tenants['purge-b']}", "global", f"key:{uuid.uuid4().hex}"):
            status, body = team_admin.call("POST", "/cache/purge", {"namespace": namespace})
            assert status == 403, body
        assert state(b, text) == "hit", "B's entry survived A's attempts"
        # Its own namespace (the default for a team's key): A's entries go, B's stay.
        answer = team_admin.ok("POST", "/cache/purge", {})
        assert answer["namespace"] == f"team:{tenants['purge-a']}" and answer["purged"] >= 1
        assert state(a, text) == "miss"
        assert state(b, text) == "hit"
        # Team-scoped callers read no global figures, and a viewer purges nothing.
        assert team_admin.call("GET", "/cache")[0] == 403
        assert AdminClient(gw, tenants["viewer"]).call("POST", "/cache/purge", {})[0] == 403


def test_admin_purges_by_model_and_age_and_reads_figures(gw: Gateway) -> None:
    admin = AdminClient(gw, MASTER_KEY)
    text = f"by model {uuid.uuid4().hex}"
    with make_client(gw) as client:
        for model in ("gpt-test", "gpt-other"):
            state(client, text, model)
            assert state(client, text, model) == "hit"
        # Nothing is an hour old yet.
        assert admin.ok("POST", "/cache/purge", {"model": "gpt-other", "older_than_s": 3600})["purged"] == 0
        assert state(client, text, "gpt-other") == "hit"
        assert admin.ok("POST", "/cache/purge", {"model": "gpt-other"})["purged"] >= 1
        assert state(client, text, "gpt-other") == "miss"
        assert state(client, text, "gpt-test") == "hit"
    stats = admin.ok("GET", "/cache")
    assert stats["backend"] == "memory"
    assert stats["hits"] >= 3 and stats["stores"] >= 2 and stats["entries"] >= 1 and stats["bytes"] > 0
    for bad in ({"namespace": ""}, {"older_than_s": -1}, {"model": "x" * 400}, {"unknown": 1}):
        status, _ = admin.call("POST", "/cache/purge", bad)
        assert status in (400, 422), bad


def test_routes_answer_404_when_the_cache_is_off(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    gw = gateway_factory(standard_config(upstream.base_url, refused.base_url))
    admin = AdminClient(gw, MASTER_KEY)
    assert admin.call("GET", "/cache")[0] == 404
    assert admin.call("POST", "/cache/purge", {})[0] == 404


def test_a_purge_reaches_every_worker(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    """In-process entries are per worker, and the purge call reaches one: the others drop theirs
    before their next lookup (cache/purges.py), so after the purge's answer no worker serves one."""
    config = standard_config(upstream.base_url, refused.base_url)
    config["cache"] = {"enabled": True}
    gw = gateway_factory(config, workers=2)
    admin = AdminClient(gw, MASTER_KEY)
    body = {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": uuid.uuid4().hex}],
        "temperature": 0,
    }

    def states(n: int, headers: dict[str, str] | None = None) -> list[str]:
        """`n` requests, each on a new connection (so the workers share them)."""
        out = []
        for _ in range(n):
            answer = post_json(gw.port, "/v1/chat/completions", body, MASTER_KEY, extra_headers=headers)
            assert answer.status == 200, answer.body
            out.append(answer.header(CACHE) or "")
        return out

    # Both workers hold the answer (each worker's figures say so; the calls land on either).
    holding: dict[int, int] = {}
    for _ in range(20):
        states(5)
        for _ in range(5):
            stats = admin.ok("GET", "/cache")
            holding[stats["worker_pid"]] = stats["entries"]
        if len(holding) == 2 and all(holding.values()):
            break
    assert len(holding) == 2 and all(holding.values()), f"both workers should hold the answer: {holding}"
    assert admin.ok("POST", "/cache/purge", {"model": "gpt-test"})["purged"] == 1
    # Looked up, never stored again (no-store): a hit would be an entry the purge left behind.
    after = states(30, {"cache-control": "no-store"})
    assert after == ["miss"] * 30
