"""Codex CLI (the pinned `@openai/codex`, tests/agents) through gatecore's `/v1/responses`, in its
default configuration (a model provider pointing at gatecore, `wire_api = "responses"`), running
`codex exec` non-interactively: once against an OpenAI-chat upstream (gatecore translates), once
against a Responses upstream (gatecore passes the requests through). The upstream is an agent model
(tests/upstreams/agent_model.py): it calls Codex's shell tool, Codex runs it, and the model reports
the tool's output once it comes back, which Codex prints. Nothing leaves 127.0.0.1: the config turns
off Codex's update check, analytics, feedback and telemetry, HOME and CODEX_HOME are temporary."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ..upstreams.agent_model import CALL_ID_PREFIX, AgentModel, ToolPlan
from ..upstreams.agent_model_responses import AgentModelResponses
from .gateway import MASTER_KEY, Gateway, GatewayFactory

CODEX = Path(__file__).resolve().parents[1] / "agents" / "node_modules" / ".bin" / "codex"
MARK = "CODEX-TOOL-RAN-7f3a"
# Codex's shell tool has had several names and argument shapes; the model calls whichever is offered.
PLAN = ToolPlan(
    {
        "exec_command": {"cmd": f"echo {MARK}"},
        "shell_command": {"command": f"echo {MARK}"},
        "shell": {"command": ["echo", MARK]},
    }
)
TIMEOUTS = {"connect": 2, "first_byte": 20, "idle": 20, "total": 60}

pytestmark = pytest.mark.skipif(
    not CODEX.exists(), reason="the pinned agent CLIs are installed by `make agents`"
)


def _gateway(gateway_factory: GatewayFactory, origin: str, responses: str) -> Gateway:
    providers = [{"name": "agent", "kind": "openai", "base_url": f"{origin}/v1", "api_key": "sk-agent-up",
                  "responses": responses}]  # fmt: skip
    models = [{"name": "agent-model", "deployments": [{"provider": "agent", "model": "agent-upstream"}],
               "timeouts": TIMEOUTS}]  # fmt: skip
    config = {"server": {"access_log": True}, "providers": providers, "models": models,
              "auth": {"master_key": MASTER_KEY}}  # fmt: skip
    return gateway_factory(config)


def run_codex(gw: Gateway, tmp_path: Path, prompt: str) -> subprocess.CompletedProcess[str]:
    """`codex exec` with a fresh CODEX_HOME whose config points a model provider at gatecore."""
    home = tmp_path / "home"
    codex_home = home / ".codex"
    work = tmp_path / "work"
    codex_home.mkdir(parents=True)
    work.mkdir()
    (codex_home / "config.toml").write_text(
        f"""model = "agent-model"
model_provider = "gatecore"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false

[model_providers.gatecore]
name = "gatecore"
base_url = "{gw.openai_base_url}"
env_key = "GATECORE_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"
"""
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(codex_home),
        "GATECORE_API_KEY": MASTER_KEY,
        # Anything not for loopback would go to a proxy that is not there: nothing leaves the machine.
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "ALL_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "NO_COLOR": "1",
        "TERM": "dumb",
    }
    command = [str(CODEX), "exec", "--skip-git-repo-check", "--color", "never", "-C", str(work), prompt]
    return subprocess.run(
        command,
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _assert_round_trip(result: subprocess.CompletedProcess[str], upstream: AgentModel, gw: Gateway) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    # The model's last answer quotes the tool's output (Codex's shell tool wraps it in a report).
    _, done, report = result.stdout.partition(AgentModel.DONE)
    assert done and MARK in report, output[-4000:]
    calls = upstream.tool_calls()
    assert calls and calls[0].call_id.startswith(CALL_ID_PREFIX), upstream.turns
    # What gatecore received: one request per model turn (the tool call, then the report), each
    # answered and with the upstream's usage in its record.
    turns = [r for r in upstream.requests if r.path in ("/v1/responses", "/v1/chat/completions")]
    assert len(turns) == len(upstream.turns) >= 2
    # The access log is written in batches: wait for each turn's line (by the id gatecore sent upstream).
    entries = [gw.wait_access_log(str(r.request_id)) for r in turns]
    assert all((e["status"], e["input_tokens"], e["output_tokens"]) == (200, 50, 10) for e in entries), (
        entries
    )
    others = [e for e in gw.access_log() if e not in entries]
    assert not others, (others, output[-3000:])  # nothing else went through gatecore


def test_codex_through_translation_to_chat_upstream(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    with AgentModel(PLAN, model="agent-upstream") as upstream:
        gw = _gateway(gateway_factory, upstream.origin, "translate")
        result = run_codex(gw, tmp_path, "Run the command that prints the marker, then tell me its output.")
        _assert_round_trip(result, upstream, gw)
        chats = [r for r in upstream.requests if r.path == "/v1/chat/completions"]
        # The turn that carried the tool's result reached the upstream as a chat tool message.
        last = chats[-1].body_json
        tool_messages = [m for m in last["messages"] if m["role"] == "tool"]
        assert tool_messages and MARK in str(tool_messages[-1]["content"])
        assert tool_messages[-1]["tool_call_id"].startswith(CALL_ID_PREFIX)
        assert last["model"] == "agent-upstream"
        # Codex's built-in tools (web_search, a namespace) are dropped; its function tools arrive.
        names = [t["function"]["name"] for t in last["tools"]]
        assert "exec_command" in names and all(t["type"] == "function" for t in last["tools"])
        assert not {"web_search", "multi_agent_v1"} & set(names)
        for field in ("store", "include", "client_metadata", "prompt_cache_key", "input", "reasoning"):
            assert field not in last


def test_codex_through_passthrough_to_responses_upstream(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    with AgentModelResponses(PLAN, model="agent-upstream") as upstream:
        gw = _gateway(gateway_factory, upstream.origin, "native")
        result = run_codex(gw, tmp_path, "Run the command that prints the marker, then tell me its output.")
        _assert_round_trip(result, upstream, gw)
        turns = [r for r in upstream.requests if r.path == "/v1/responses"]
        last = turns[-1].body_json
        assert last["model"] == "agent-upstream"
        outputs = [
            i for i in last["input"] if isinstance(i, dict) and i.get("type") == "function_call_output"
        ]
        assert (
            outputs
            and outputs[-1]["call_id"].startswith(CALL_ID_PREFIX)
            and MARK in str(outputs[-1]["output"])
        )
        # Passed through as Codex sent it: its built-in tools and its own fields arrive untouched.
        kinds = {t["type"] for t in last["tools"]}
        assert {"function", "namespace", "web_search"} <= kinds
        assert last["store"] is False and last["include"] == ["reasoning.encrypted_content"]
        assert last["prompt_cache_key"] and last["client_metadata"]["session_id"]
