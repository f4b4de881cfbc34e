"""A stage shipped by another installed package (entry-point group `gatecore.stages`) is placed in the
chain by config, runs with the built-in stages' interface, and its refusals are rendered in each
route's API shape. The example package (tests/plugins/gatecore_header_guard) is really installed,
with pip, into a folder of its own that the server's Python path names."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from . import raw_http
from .conftest import make_client
from .gateway import MASTER_KEY, REPO_ROOT, GatewayFactory, run_cli, standard_config, write_config

PACKAGE = REPO_ROOT / "tests" / "plugins" / "gatecore_header_guard"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The example package, installed (built by its own backend, flit_core) into a fresh folder."""
    target = tmp_path_factory.mktemp("plugins")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(PACKAGE),
        ],
        check=True,
        timeout=120,
        env={**os.environ, "PIP_REQUIRE_VIRTUALENV": "0"},
    )
    assert (target / "gatecore_header_guard").is_dir()
    yield str(target)


def _env(plugin_path: str) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(filter(None, [plugin_path, os.environ.get("PYTHONPATH")]))}


def _config(upstream: MockUpstream, refused: RefusedPort, stages: list[dict[str, Any]]) -> dict[str, Any]:
    config = standard_config(upstream.base_url, refused.base_url)
    config["pipeline"] = {"stages": stages}
    return config


HI = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
GUARD = {"use": "header_guard", "after": "auth", "options": {"header": "x-team-tag", "allowed": ["blue"]}}


def test_a_placed_stage_refuses_in_each_apis_shape(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, plugin_path: str
) -> None:
    gw = gateway_factory(_config(upstream, refused, [GUARD]), env=_env(plugin_path))
    client = make_client(gw)
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert denied.value.status_code == 403
    assert denied.value.body == {
        "message": "This gateway needs the 'x-team-tag' header.",
        "type": "permission_error",
        "param": None,
        "code": "header_required",
    }

    wrong = raw_http.post_json(
        gw.port, "/v1/chat/completions", HI, MASTER_KEY, extra_headers={"x-team-tag": "red"}
    )
    assert wrong.status == 403
    assert wrong.json()["error"]["code"] == "header_not_allowed"

    claude = anthropic.Anthropic(api_key=MASTER_KEY, base_url=gw.base_url, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as messages_refused:
        claude.messages.create(model="gpt-test", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert messages_refused.value.body == {
        "type": "error",
        "error": {"type": "permission_error", "message": "This gateway needs the 'x-team-tag' header."},
    }

    allowed = make_client(gw, default_headers={"x-team-tag": "blue"})
    answer = allowed.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content


def test_placed_stages_run_where_config_puts_them_and_are_timed(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, plugin_path: str
) -> None:
    second = {
        "use": "header_guard",
        "name": "region_guard",
        "before": "route",
        "options": {"header": "x-region"},
    }
    gw = gateway_factory(_config(upstream, refused, [GUARD, second]), env=_env(plugin_path))
    # After auth: an unauthenticated request is refused by auth first, whatever its headers.
    anonymous = raw_http.post_json(gw.port, "/v1/chat/completions", HI)
    assert anonymous.status == 401
    # Before route: an unknown model is refused by the guard (403), not by routing (404).
    team = {"x-team-tag": "blue"}
    unknown = raw_http.post_json(
        gw.port, "/v1/chat/completions", {**HI, "model": "no-such-model"}, MASTER_KEY, extra_headers=team
    )
    assert unknown.status == 403
    assert unknown.json()["error"]["code"] == "header_required"
    debug = {**team, "x-region": "eu", "x-gatecore-debug": "timing"}
    ok = raw_http.post_json(gw.port, "/v1/chat/completions", HI, MASTER_KEY, extra_headers=debug)
    assert ok.status == 200
    timing = ok.header("x-gatecore-timing")
    assert timing is not None
    stages = [part.split(";")[0].strip() for part in timing.split(",")]
    assert stages == [
        "auth",
        "header_guard",
        "decode",
        "region_guard",
        "route",
        "limits",
        "upstream",
        "relay",
        "total",
    ]


def test_check_names_a_stage_that_is_not_installed(
    tmp_path: Path, upstream: MockUpstream, refused: RefusedPort
) -> None:
    config = _config(upstream, refused, [{"use": "no_such_stage", "after": "auth"}, {"use": "header_guard"}])
    path = write_config(config, tmp_path / "gatecore.yaml")
    result = run_cli(["check", "--config", str(path)])
    assert result.returncode != 0
    assert "pipeline.stages[0].use: no installed stage 'no_such_stage'" in result.stdout + result.stderr
    assert "pipeline.stages[1]: give exactly one of 'before' and 'after'" in result.stdout + result.stderr


def test_a_place_not_in_the_chain_stops_the_server(
    tmp_path: Path, upstream: MockUpstream, refused: RefusedPort, plugin_path: str
) -> None:
    config = _config(upstream, refused, [{**GUARD, "after": "no_such_stage"}])
    path = write_config(config, tmp_path / "gatecore.yaml")
    result = run_cli(["check", "--config", str(path)], env=_env(plugin_path))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "pipeline.stages[0]: no stage 'no_such_stage' in the chain" in output
    assert "Traceback" not in output
