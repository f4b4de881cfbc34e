"""The real Gemini CLI (`@google/gemini-cli`, pinned in tests/agents) run non-interactively against
gatecore's Gemini API, with an OpenAI-format agent model behind it (tests/upstreams/agent_model.py):
the CLI's tool round trip (the model calls `read_file`, the CLI runs it and sends the result back,
the model answers with text) must complete through gatecore, and what reached the upstream and what
gatecore served are asserted.

The CLI runs with a temporary HOME whose settings turn off usage statistics, telemetry and update
checks, `GOOGLE_GEMINI_BASE_URL` pointing at gatecore (the CLI allows plain HTTP to 127.0.0.1) and
the gatecore key as `GEMINI_API_KEY`; nothing reaches the network.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..upstreams.agent_model import CALL_ID_PREFIX, AgentModel, ToolPlan
from .gateway import MASTER_KEY, REPO_ROOT, Gateway, GatewayFactory

GEMINI = REPO_ROOT / "tests" / "agents" / "node_modules" / ".bin" / "gemini"
SECRET = "the-gemini-cli-read-this-7f3a"
MODEL = "gemini-2.5-flash"

pytestmark = pytest.mark.skipif(not GEMINI.exists(), reason="the agent CLIs are not installed (make agents)")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    work = tmp_path / "project"
    work.mkdir()
    (work / "notes.txt").write_text(f"{SECRET}\n")
    return work


@pytest.fixture
def agent(workspace: Path) -> Iterator[AgentModel]:
    plan = ToolPlan({"read_file": {"file_path": str(workspace / "notes.txt")}})
    with AgentModel(plan) as model:
        yield model


def cli_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    settings = {
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "security": {"auth": {"selectedType": "gemini-api-key"}},
    }
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    return home


def run_gemini(gw: Gateway, workspace: Path, home: Path, prompt: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GEMINI_API_KEY": MASTER_KEY,
        "GOOGLE_GEMINI_BASE_URL": gw.base_url,
        "GEMINI_TELEMETRY_ENABLED": "false",
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
        "NO_COLOR": "1",
        "TERM": "dumb",
        "CI": "1",
    }
    return subprocess.run(
        [str(GEMINI), "-m", MODEL, "-p", prompt, "--output-format", "json"],
        env=env,
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_gemini_cli_tool_round_trip(
    gateway_factory: GatewayFactory, agent: AgentModel, workspace: Path, tmp_path: Path
) -> None:
    config = {
        "server": {"access_log": True},
        "providers": [
            {"name": "agent", "kind": "openai", "base_url": agent.origin + "/v1", "api_key": "sk-a"}
        ],
        "models": [{"name": "*", "deployments": [{"provider": "agent", "model": "*"}]}],
        "auth": {"master_key": MASTER_KEY},
    }
    gw = gateway_factory(config)
    done = run_gemini(gw, workspace, cli_home(tmp_path), "What does notes.txt say?")
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    assert answer["response"].startswith(AgentModel.DONE), answer
    assert SECRET in answer["response"]

    # The upstream got the CLI's turns through gatecore, in the hub format: the tool offered, the
    # call it made answered by the CLI's tool result under the same call id.
    chats = [r for r in agent.requests if r.path == "/v1/chat/completions"]
    assert len(chats) >= 2
    assert all(r.body_json["model"] == MODEL for r in chats)
    first = chats[0].body_json
    offered = [t["function"]["name"] for t in first["tools"]]
    assert "read_file" in offered
    assert first["messages"][0]["role"] == "system"
    assert first["stream"] is True and first["stream_options"] == {"include_usage": True}
    # The CLI's generationConfig: its sampling as sent, its thinking budget (8192) as an effort.
    assert (first["temperature"], first["top_p"], first["top_k"]) == (1.0, 0.95, 64)
    assert first["reasoning_effort"] == "medium"
    [call] = agent.tool_calls()
    last = chats[-1].body_json["messages"]
    assistant = next(m for m in last if m.get("tool_calls"))
    assert assistant["tool_calls"][0]["id"] == call.call_id
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == call.arguments
    result = next(m for m in last if m["role"] == "tool")
    assert result["tool_call_id"].startswith(CALL_ID_PREFIX)
    assert SECRET in result["content"]

    # gatecore served and accounted every turn on its Gemini route (the access log is written after
    # the answer: its last line may come a moment after the CLI exits).
    deadline = time.monotonic() + 10
    while len(served := [e for e in gw.access_log() if e.get("model") == MODEL]) < len(chats):
        assert time.monotonic() < deadline, f"{len(served)} access-log lines for {len(chats)} turns"
        time.sleep(0.05)
    assert len(served) == len(chats)
    assert all(e["status"] == 200 and e["usage_source"] == "upstream" for e in served)
    assert sum(e["input_tokens"] for e in served) == 50 * len(chats)
