"""The real Claude Code (tests/agents: @anthropic-ai/claude-code 2.1.337), run non-interactively
(`claude -p`) in its default setup (`ANTHROPIC_BASE_URL` + `ANTHROPIC_API_KEY`) against gatecore,
once with an OpenAI-format upstream (a non-Claude model name) and once with an Anthropic-format one (a
Claude model name). The upstream is an agent's model (tests/upstreams/agent_model.py): it calls Bash
while tools are offered, then reports the tool's result; Claude Code must run the tool and finish.
Nothing reaches the network: telemetry, auto-update and non-essential traffic are switched off, HOME
and CLAUDE_CONFIG_DIR are temporary, every URL is loopback and the proxy for anything else is a
closed local port.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..upstreams.agent_model import AgentModel, ToolPlan
from .gateway import MASTER_KEY, REPO_ROOT, Gateway, GatewayFactory

CLAUDE = REPO_ROOT / "tests" / "agents" / "node_modules" / ".bin" / "claude"
MARK = "cc-tool-ran-7f3e"
TIMEOUTS = {"connect": 2, "first_byte": 20, "idle": 20, "total": 60}

pytestmark = pytest.mark.skipif(not CLAUDE.exists(), reason="tests/agents not installed (make agents)")


@pytest.fixture(scope="module")
def agent() -> Iterator[AgentModel]:
    with AgentModel(ToolPlan({"Bash": {"command": f"echo {MARK}", "description": "print a mark"}})) as model:
        yield model


@pytest.fixture
def gw(agent: AgentModel, gateway_factory: GatewayFactory) -> Gateway:
    providers = [
        {"name": "oai", "kind": "openai", "base_url": f"{agent.origin}/v1", "api_key": "sk-agent-oai"},
        {"name": "claude", "kind": "anthropic", "base_url": agent.origin, "api_key": "sk-agent-ant"},
    ]
    models = [
        {"name": "gpt-4o-mini", "deployments": [{"provider": "oai", "model": "agent-4o"}], "timeouts": TIMEOUTS},
        {"name": "claude-sonnet-4-5", "deployments": [{"provider": "claude", "model": "agent-sonnet"}],
         "timeouts": TIMEOUTS},
    ]  # fmt: skip
    config = {"server": {"access_log": True}, "providers": providers, "models": models,
              "auth": {"master_key": MASTER_KEY}}  # fmt: skip
    return gateway_factory(config)


def run_claude(gw: Gateway, model: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "ANTHROPIC_BASE_URL": gw.base_url,
        "ANTHROPIC_API_KEY": MASTER_KEY,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
        # Belt and braces: anything not bound for loopback goes to a closed local port.
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    prompt = f"Run the shell command `echo {MARK}` with the Bash tool and tell me what it printed."
    args = [str(CLAUDE), "-p", prompt, "--model", model, "--allowedTools", "Bash", "--max-turns", "4"]
    return subprocess.run(args, cwd=home, env=env, capture_output=True, text=True, timeout=120, check=False)


def received(gw: Gateway) -> list[tuple[str, int]]:
    return [(line["endpoint"], line["status"]) for line in gw.access_log()]


@pytest.mark.parametrize(
    ("model", "path"),
    [("gpt-4o-mini", "/v1/chat/completions"), ("claude-sonnet-4-5", "/v1/messages")],
    ids=["openai-upstream", "anthropic-upstream"],
)
def test_claude_code_tool_round_trip(
    gw: Gateway, agent: AgentModel, tmp_path: Path, model: str, path: str
) -> None:
    before, turns_before = len(agent.requests), len(agent.turns)
    result = run_claude(gw, model, tmp_path)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:], gw.output()[-3000:])
    # What gatecore received: every request answered, none refused. The access log is written in
    # batches: first wait for the line of each call that reached the upstream (by the id gatecore sent).
    for request in agent.requests[before:]:
        gw.wait_access_log(str(request.request_id))
    lines = received(gw)
    assert len(lines) >= 2 and all(status == 200 for _, status in lines), lines
    assert {endpoint for endpoint, _ in lines} <= {"messages"}, lines
    # The round trip: a tool call, Claude Code ran it, the result came back, then the final text.
    assert AgentModel.DONE in result.stdout and MARK in result.stdout, result.stdout[-2000:]
    turns = [turn for _, turn in agent.turns[turns_before:]]
    assert [t.tool for t in turns if t.tool] == ["Bash"], turns
    assert turns[-1].text.startswith(AgentModel.DONE), turns
    ours = agent.requests[before:]
    assert {r.path for r in ours} == {path}
    with_result = [
        r for r in ours if MARK in r.body.decode(errors="replace") and "call_agent_" in r.body.decode()
    ]
    assert with_result, "the tool's result never reached the upstream"
    last: Any = with_result[-1].body_json
    assert last["model"] in ("agent-4o", "agent-sonnet")
    if path == "/v1/messages":
        # The Anthropic upstream got Claude Code's beta headers and its own key, never the client's.
        headers = with_result[-1].headers
        assert "claude-code-20250219" in headers["anthropic-beta"].split(",")
        assert headers["anthropic-version"] == "2023-06-01"
        assert headers["x-api-key"] == "sk-agent-ant"
        assert "thinking" in last and "context_management" in last
    else:
        headers = with_result[-1].headers
        assert headers["authorization"] == "Bearer sk-agent-oai"
        assert "anthropic-beta" not in headers and "x-api-key" not in headers
        assert [m["role"] for m in last["messages"]].count("tool") >= 1
        assert "context_management" not in last and "output_config" not in last
