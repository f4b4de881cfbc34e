"""Config reload without restarting the workers: `POST /admin/v1/config/reload` and SIGHUP apply a
changed config to every worker while 50 streams are live (each completes), the new hash shows in
/readyz and /metrics, and an invalid config is refused with every error's path while the old one
keeps serving."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from ..e2e.conftest import make_client
from ..e2e.gateway import MASTER_KEY, Gateway, GatewayFactory, write_config
from ..upstreams.openai_mock import MockUpstream
from .conftest import STREAM_CHUNKS, LiveStreams, get_json, post_json, ready_hash, wait_hash_everywhere

RELOAD = "/admin/v1/config/reload"


def config(upstream: MockUpstream, models: list[str], **server: Any) -> dict[str, Any]:
    return {
        "server": {"shutdown_grace_s": 15, **server},
        "providers": [{"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up"}],
        "models": [
            {
                "name": name,
                "deployments": [{"provider": "up", "model": "upstream-model-1"}],
                "timeouts": {"connect": 2, "first_byte": 10, "idle": 10, "total": 30},
            }
            for name in models
        ],
        "auth": {"master_key": MASTER_KEY},
    }


def config_path(gw: Gateway) -> Path:
    return gw.stdout_path.parent / "gatecore.yaml"


def test_reload_during_live_streams(gateway_factory: GatewayFactory, upstream: MockUpstream) -> None:
    gw = gateway_factory(config(upstream, ["m1"]), workers=2)
    first = ready_hash(gw.port)
    assert first is not None
    answers: dict[str, Any] = {}

    def reload() -> None:
        write_config(config(upstream, ["m1", "m2"]), config_path(gw))
        answers["status"], answers["body"] = post_json(gw.port, RELOAD)

    streams = LiveStreams(gw, "m1", 50, gap_ms=60, prefix="reload-live")
    results = asyncio.run(streams.run(reload))
    assert answers["status"] == 200, answers
    assert answers["body"]["status"] == "reloaded"
    second = answers["body"]["config_hash"]
    assert second != first
    # Every stream that was live across the reload finished whole, on the old snapshot.
    assert results == [(STREAM_CHUNKS, "stop")] * 50
    assert wait_hash_everywhere(gw, first) == second
    with make_client(gw) as client:
        for _ in range(10):  # fresh connections land on either worker: all know the new model
            client.with_options(max_retries=0).chat.completions.create(
                model="m2", messages=[{"role": "user", "content": "hi"}]
            )
    _, metrics = get_json(gw.port, "/metrics")  # not JSON: read it as text instead
    assert metrics is None
    text = metrics_text(gw.port)
    assert f'gatecore_config_info{{config_hash="{second}"}} 1' in text

    # SIGHUP to the main process does the same (and restarts no worker: same pids keep serving).
    write_config(config(upstream, ["m2"]), config_path(gw))
    os.kill(gw.proc.pid, signal.SIGHUP)
    third = wait_hash_everywhere(gw, second)
    assert third not in (first, second)
    with make_client(gw) as client, pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="m1", messages=[{"role": "user", "content": "hi"}])
    assert "respawning workers" not in gw.output()
    assert gw.alive()


def metrics_text(port: int) -> str:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def test_invalid_config_is_refused_and_the_old_one_serves(
    gateway_factory: GatewayFactory, upstream: MockUpstream
) -> None:
    gw = gateway_factory(config(upstream, ["m1"]), workers=2)
    first = ready_hash(gw.port)
    bad = config(upstream, ["m1"])
    bad["models"][0]["deployments"][0]["provider"] = "nowhere"
    bad["server"]["drain_delay_s"] = -1
    bad["server"]["bogus"] = True
    config_path(gw).write_text(__import__("yaml").safe_dump(bad))
    status, body = post_json(gw.port, RELOAD)
    assert status == 400, body
    error = body["error"]
    assert error["code"] == "invalid_config"
    paths = " ".join(error["errors"])
    assert "server" in paths and "bogus" in paths, error["errors"]
    # Only an admin may reload, valid config or not: an unknown key is 401, a viewer and a team_admin 403.
    assert post_json(gw.port, RELOAD, key="sk-unknown")[0] == 401
    for role, team in (("viewer", None), ("team_admin", "reloaders")):
        if team is not None:
            assert post_json(gw.port, "/admin/v1/teams", {"name": team})[0] == 201
        key_body: dict[str, Any] = {"name": f"{role}-key", "role": role, **({"team": team} if team else {})}
        status, created = post_json(gw.port, "/admin/v1/keys", key_body)
        assert status == 201, created
        assert post_json(gw.port, RELOAD, key=created["key"])[0] == 403
    # SIGHUP with the same file: refused too, logged with the errors, nothing changes.
    os.kill(gw.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "config reload refused" not in gw.output():
        assert time.monotonic() < deadline, gw.output()[-2000:]
        time.sleep(0.05)
    assert "bogus" in gw.output()
    time.sleep(0.6)  # longer than a worker's poll: a wrongly announced reload would show now
    for _ in range(10):
        assert ready_hash(gw.port) == first
    with make_client(gw) as client:
        client.chat.completions.create(model="m1", messages=[{"role": "user", "content": "hi"}])
    # A valid file again reloads.
    write_config(config(upstream, ["m1", "m3"]), config_path(gw))
    status, body = post_json(gw.port, RELOAD)
    assert status == 200 and body["config_hash"] != first
    # Both are in the audit log, with the caller and the refused config's errors.
    _, audit = get_json(gw.port, "/admin/v1/audit?limit=10", key=MASTER_KEY)
    actions = [(e["action"], e["actor"]) for e in audit["data"]]
    assert ("config.reload", "master") in actions and ("config.reload_refused", "master") in actions
    refused = next(e for e in audit["data"] if e["action"] == "config.reload_refused")
    assert any("bogus" in error for error in refused["detail"]["errors"])


def test_config_watch_reloads_on_change(gateway_factory: GatewayFactory, upstream: MockUpstream) -> None:
    gw = gateway_factory(config(upstream, ["m1"], config_watch=True))
    first = ready_hash(gw.port)
    time.sleep(0.05)  # a different mtime even on coarse clocks
    write_config(config(upstream, ["m1", "m4"], config_watch=True), config_path(gw))
    wait_hash_everywhere(gw, first)
    with make_client(gw) as client:
        client.chat.completions.create(model="m4", messages=[{"role": "user", "content": "hi"}])
