"""`gatecore prompts push DIR | list | show | promote | rollback` against the store a running gateway
serves from: prompts kept as files, pushed twice (no new version), changed (a new one), promoted and
rolled back, with the gateway's answers following within its one-second label cache."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from ..upstreams.openai_mock import MockUpstream
from .conftest import make_client
from .gateway import Gateway, GatewayFactory, run_cli, write_config
from .prompt_helpers import call_prompt, prompts_config, template


def _cli(config: Path, *args: str) -> Any:
    result = run_cli(["prompts", "--config", str(config), *args])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _version_served(gw: Gateway, want: int) -> int:
    deadline = time.monotonic() + 5
    with make_client(gw) as client:
        while True:
            version = call_prompt(client, "greet", {"variables": {"topic": "t"}})[1]
            if version == want or time.monotonic() > deadline:
                return version
            time.sleep(0.1)


def test_push_promote_rollback(
    gateway_factory: GatewayFactory, upstream: MockUpstream, tmp_path: Path
) -> None:
    config = prompts_config(upstream, f"sqlite:///{tmp_path / 'store.db'}")
    config_path = write_config(config, tmp_path / "gatecore.yaml")
    gw = gateway_factory(config)
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    greet = template("greet", "Hello {{ topic }}")
    del greet["name"]  # the file's stem names it
    (prompts / "greet.yaml").write_text(yaml.safe_dump(greet))
    chain = {
        "variables": {"type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]},
        "steps": [{"name": "only", "prompt": "greet", "variables": {"topic": "{{ vars.topic }}"}}],
    }
    (prompts / "a-chain.json").write_text(json.dumps(chain))
    (prompts / "README.md").write_text("not a prompt")
    pushed = _cli(config_path, "push", str(prompts))
    # Templates first, whatever the file order: the chain's step must exist.
    assert [(p["file"], p["name"], p["version"]) for p in pushed] == [
        ("greet.yaml", "greet", 1),
        ("a-chain.json", "a-chain", 1),
    ]
    second = _cli(config_path, "push", str(prompts))  # the same files again: no new version
    assert [(p["version"], p.get("unchanged")) for p in second] == [(1, True), (1, True)]
    greet["messages"][1]["content"] = "Hi {{ topic }}"
    (prompts / "greet.yaml").write_text(yaml.safe_dump(greet))
    again = _cli(config_path, "push", str(prompts))
    assert [(p["name"], p["version"], p.get("unchanged", False)) for p in again] == [
        ("greet", 2, False),
        ("a-chain", 1, True),
    ]
    assert {p["name"] for p in _cli(config_path, "list")["data"]} == {"greet", "a-chain"}
    shown = _cli(config_path, "show", "greet")
    assert [v["version"] for v in shown["versions"]] == [1, 2] and shown["labels"]["production"][
        "versions"
    ] == {"1": 1.0}
    assert (
        _cli(config_path, "show", "greet", "--version", "2")["spec"]["messages"][1]["content"]
        == "Hi {{ topic }}"
    )
    assert _version_served(gw, 1) == 1
    _cli(config_path, "promote", "greet", "--version", "2")
    assert _version_served(gw, 2) == 2
    with make_client(gw) as client:
        answer, _ = call_prompt(client, "a-chain", {"variables": {"topic": "x"}})
    assert answer.choices[0].message.content == "mock: Hi x"
    _cli(config_path, "rollback", "greet")
    assert _version_served(gw, 1) == 1
    failed = run_cli(["prompts", "--config", str(config_path), "rollback", "greet"])
    assert failed.returncode == 1 and "none before it" in failed.stderr
    (prompts / "bad.yaml").write_text(yaml.safe_dump(template("bad", "{{ nope }}")))
    failed = run_cli(["prompts", "--config", str(config_path), "push", str(prompts)])
    assert failed.returncode == 1 and "bad.yaml" in failed.stderr
