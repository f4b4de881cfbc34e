"""Claude Code's default setup (`ANTHROPIC_BASE_URL` + `ANTHROPIC_API_KEY`) through gatecore's
`/v1/messages`: the official `anthropic` SDK sends what Claude Code 2.1.337 sent on its first turn
(claude_code_request.json: a `role: "system"` entry inside `messages`, `thinking`,
`context_management`, `output_config`, its beta headers, `?beta=true`), to an OpenAI-format upstream
(a non-Claude model name) and to an Anthropic one (a Claude model name), and the test checks what
reached each upstream. Also: the per-provider header allow-list, and `count_tokens` under the key's
rpm like any other call.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from ..upstreams import anthropic_mock
from ..upstreams.anthropic_mock import AnthropicMock
from ..upstreams.bedrock_mock import BedrockMock
from ..upstreams.openai_mock import MockUpstream
from .anthropic_client import anthropic_error, post_raw
from .conftest import new_request_id
from .gateway import MASTER_KEY, Gateway, GatewayFactory, run_cli, write_config

CAPTURED = json.loads((Path(__file__).parent / "claude_code_request.json").read_text())
BETAS: list[str] = CAPTURED["headers"]["anthropic-beta"].split(",")
TIMEOUTS = {"connect": 2, "first_byte": 5, "idle": 5, "total": 10}
RPM_KEY = "sk-claude-code-rpm-e2e-7a1c"
AWS_KEY_ID = "AKIDE2ECLAUDECODE"
AWS_SECRET = "bedrock-secret-claude-code-9e2b"
BEDROCK_MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"


@pytest.fixture(scope="module")
def claude_mock() -> Iterator[AnthropicMock]:
    with AnthropicMock() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def bedrock() -> Iterator[BedrockMock]:
    with BedrockMock(AWS_KEY_ID, AWS_SECRET, "us-east-1") as upstream:
        yield upstream


def _config(openai_url: str, claude_url: str, bedrock_url: str = "http://127.0.0.1:9") -> dict[str, Any]:
    aws = {"kind": "bedrock", "base_url": bedrock_url, "aws_region": "us-east-1",
           "aws_access_key_id": AWS_KEY_ID, "aws_secret_access_key": AWS_SECRET}  # fmt: skip
    providers = [
        {"name": "oai", "kind": "openai", "base_url": openai_url, "api_key": "sk-upstream-cc",
         "forward_headers": ["x-app"]},
        {"name": "claude", "kind": "anthropic", "base_url": claude_url, "api_key": anthropic_mock.API_KEY},
        {"name": "aws-betas", **aws, "forward_headers": ["anthropic-beta"]},
        {"name": "aws", **aws},
    ]  # fmt: skip
    models = [
        {"name": "gpt-4o-mini", "deployments": [{"provider": "oai", "model": "gpt-4o-mini"}], "timeouts": TIMEOUTS},
        {"name": "claude-sonnet-4-5", "deployments": [{"provider": "claude", "model": "claude-sonnet-4-5"}],
         "timeouts": TIMEOUTS},
        {"name": "claude/*", "deployments": [{"provider": "claude", "model": "*"}], "timeouts": TIMEOUTS},
        {"name": "sonnet-aws-betas", "deployments": [{"provider": "aws-betas", "model": BEDROCK_MODEL}],
         "timeouts": TIMEOUTS},
        {"name": "sonnet-aws", "deployments": [{"provider": "aws", "model": BEDROCK_MODEL}], "timeouts": TIMEOUTS},
    ]  # fmt: skip
    keys = [{"key": RPM_KEY, "name": "cc-rpm", "rpm": 2}]
    return {"server": {"access_log": True}, "providers": providers, "models": models,
            "auth": {"master_key": MASTER_KEY, "keys": keys}}  # fmt: skip


@pytest.fixture
def gw(
    upstream: MockUpstream, claude_mock: AnthropicMock, bedrock: BedrockMock, gateway_factory: GatewayFactory
) -> Gateway:
    return gateway_factory(_config(upstream.base_url, claude_mock.origin, bedrock.base_url))


def claude_code_call(gw: Gateway, model: str, rid: str, **changes: Any) -> str:
    """Claude Code's captured first turn, as its SDK sends it, for `model`; the streamed text."""
    body = copy.deepcopy(CAPTURED["body"])
    body.update(model=model, **changes)
    headers = {k: v for k, v in CAPTURED["headers"].items() if k != "anthropic-beta"}
    headers["x-request-id"] = rid
    typed = {k: body.pop(k) for k in ("model", "messages", "system", "tools", "metadata", "max_tokens")}
    body.pop("stream")
    client = anthropic.Anthropic(
        base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0, timeout=20.0, default_headers=headers
    )
    with client:
        stream = client.beta.messages.create(**typed, betas=BETAS, stream=True, extra_body=body)
        texts = [
            event.delta.text
            for event in stream
            if event.type == "content_block_delta" and event.delta.type == "text_delta"
        ]
    return "".join(texts)


def test_non_claude_model_to_openai_upstream(gw: Gateway, upstream: MockUpstream) -> None:
    rid = new_request_id()
    text = claude_code_call(gw, "gpt-4o-mini", rid)
    assert text.startswith("mock: ")
    got = upstream.wait_for(rid)
    sent = got.body_json
    # The system entry inside `messages` stays a system message, in its place.
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["system", "user", "system"]
    captured_system = CAPTURED["body"]["messages"][1]["content"][0]["text"]
    assert sent["messages"][2]["content"] == captured_system
    assert sent["messages"][0]["content"].startswith("x-anthropic-billing-header")
    # output_config.effort → reasoning effort; thinking only cleared (already done): nothing else.
    assert sent["reasoning_effort"] == "high"
    for field in ("context_management", "output_config", "thinking", "metadata"):
        assert field not in sent
    assert [t["function"]["name"] for t in sent["tools"]] == [t["name"] for t in CAPTURED["body"]["tools"]]
    assert sent["stream"] is True and sent["max_tokens"] == 32000
    # Headers: only the allow-listed x-app of the client's; never its key or the Anthropic betas.
    assert got.headers["x-app"] == "cli"
    assert got.headers["authorization"] == "Bearer sk-upstream-cc"
    for name in ("anthropic-beta", "anthropic-version", "x-api-key", "x-claude-code-session-id"):
        assert name not in got.headers, name
    assert not got.headers.get("user-agent", "").startswith("claude-cli")
    line = gw.wait_access_log(rid)
    assert line["endpoint"] == "messages" and line["status"] == 200 and line["model"] == "gpt-4o-mini"


def test_claude_model_to_anthropic_upstream(gw: Gateway, claude_mock: AnthropicMock) -> None:
    rid = new_request_id()
    edits = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
    thinking = {"budget_tokens": 31999, "type": "enabled", "display": "omitted"}
    text = claude_code_call(
        gw, "claude-sonnet-4-5", rid, thinking=thinking, output_config={"effort": "medium"}
    )
    assert text.startswith("mock: ")
    got = claude_mock.wait_for(rid)
    sent = got.body_json
    # The beta headers arrive as Claude Code sent them, with the provider's API version.
    assert got.headers["anthropic-beta"] == ",".join(BETAS)
    assert got.headers["anthropic-version"] == "2023-06-01"
    assert got.headers["x-api-key"] == anthropic_mock.API_KEY
    assert "x-app" not in got.headers  # only the openai provider allows it
    # Anthropic's own fields as sent, not their hub form.
    assert sent["thinking"] == thinking
    assert sent["context_management"] == edits
    assert sent["output_config"] == {"effort": "medium"}
    assert "reasoning_effort" not in sent
    # The system entry of `messages` joins the system prompt (Anthropic has no system turns).
    assert [m["role"] for m in sent["messages"]] == ["user"]
    assert CAPTURED["body"]["messages"][1]["content"][0]["text"] in sent["system"]


def test_betas_reach_bedrock_only_when_allowed(gw: Gateway, bedrock: BedrockMock) -> None:
    rid = new_request_id()
    assert claude_code_call(gw, "sonnet-aws-betas", rid)
    sent = bedrock.wait_for(rid)
    assert sent.body_json["additionalModelRequestFields"]["anthropic_beta"] == BETAS
    assert "anthropic-beta" not in sent.headers
    rid = new_request_id()
    assert claude_code_call(gw, "sonnet-aws", rid)
    assert "anthropic_beta" not in json.dumps(bedrock.wait_for(rid).body_json)


def test_other_context_edits_reach_anthropic_only(
    gw: Gateway, upstream: MockUpstream, claude_mock: AnthropicMock
) -> None:
    edits = {"edits": [{"type": "clear_tool_uses_20250919", "keep": {"type": "tool_uses", "value": 3}}]}
    rid = new_request_id()
    claude_code_call(gw, "claude-sonnet-4-5", rid, context_management=edits)
    assert claude_mock.wait_for(rid).body_json["context_management"] == edits
    rid = new_request_id()
    claude_code_call(gw, "gpt-4o-mini", rid, context_management=edits)
    assert "context_management" not in upstream.wait_for(rid).body_json


def test_output_format_becomes_json_schema(gw: Gateway, upstream: MockUpstream) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    rid = new_request_id()
    body = {"model": "gpt-4o-mini", "max_tokens": 50, "messages": [{"role": "user", "content": "q"}],
            "output_config": {"format": {"type": "json_schema", "schema": schema}, "effort": "low"}}  # fmt: skip
    code, _, data = post_raw(gw, body, {"x-request-id": rid})
    assert code == 200, data
    sent = upstream.wait_for(rid).body_json
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    assert sent["reasoning_effort"] == "low"


def test_translation_400_logs_the_model_asked_for(gw: Gateway) -> None:
    rid = new_request_id()
    body = {"model": "gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}],
            "output_config": {"effort": "extreme"}}  # fmt: skip
    code, _, data = post_raw(gw, body, {"x-request-id": rid})
    assert code == 400
    assert anthropic_error(data)["message"].startswith("output_config.effort:")
    line = gw.wait_access_log(rid)
    assert (line["model"], line["status"], line["endpoint"]) == ("gpt-4o-mini", 400, "messages")
    # A model name past the bound is not logged.
    rid = new_request_id()
    code, _, _ = post_raw(gw, {**body, "model": "m" * 300}, {"x-request-id": rid})
    assert code == 400
    assert gw.wait_access_log(rid)["model"] in ("", None)


def test_count_tokens_counts_against_rpm(gw: Gateway) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "how many tokens"}]}
    path = "/v1/messages/count_tokens"
    answers = [post_raw(gw, body, {"x-api-key": RPM_KEY}, path=path) for _ in range(3)]
    assert [a[0] for a in answers] == [200, 200, 429]
    assert json.loads(answers[0][2])["input_tokens"] > 0
    assert anthropic_error(answers[2][2])["type"] == "rate_limit_error"
    assert int(answers[2][1]["retry-after"]) >= 1
    # The messages call shares the same rpm.
    code, _, _ = post_raw(gw, {**body, "max_tokens": 5}, {"x-api-key": RPM_KEY})
    assert code == 429


@pytest.mark.parametrize(
    ("provider", "name"),
    [(0, "authorization"), (0, "x-api-key"), (0, "Cookie"), (0, "x-gatecore-tags"), (0, "bad name"),
     (1, "x-goog-api-key"), (2, "x-app")],
)  # fmt: skip
def test_forwarding_a_credential_is_refused_at_load(tmp_path: Path, provider: int, name: str) -> None:
    config = _config("http://127.0.0.1:9", "http://127.0.0.1:9")
    config["providers"][provider]["forward_headers"] = ["anthropic-beta" if provider == 2 else "x-app", name]
    path = write_config(config, tmp_path / "gatecore.yaml")
    result = run_cli(["check", "--config", str(path)])
    assert result.returncode != 0
    assert f"providers[{provider}].forward_headers[1]" in result.stdout + result.stderr


# -- thinking signatures: a Claude model's tool loop through gatecore ----------------------------------

WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "Weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def _turn(client: anthropic.Anthropic, stream: bool, **kwargs: Any) -> Any:
    if not stream:
        return client.messages.create(**kwargs)
    with client.messages.stream(**kwargs) as s:
        return s.get_final_message()


@pytest.mark.parametrize("display", ["omitted", "summarized"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_signed_thinking_round_trips_to_anthropic(
    gw: Gateway, claude_mock: AnthropicMock, upstream: MockUpstream, stream: bool, display: str
) -> None:
    """Anthropic refuses a tool loop's next turn unless the assistant turn starts with its signed
    thinking block: gatecore hands the signature to the client and the block back upstream."""
    thinking = {"type": "enabled", "budget_tokens": 2048, "display": display}
    question = [{"role": "user", "content": "weather in Paris?"}]
    common: dict[str, Any] = {"max_tokens": 4096, "tools": [WEATHER], "extra_body": {"thinking": thinking}}
    with anthropic.Anthropic(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0, timeout=20.0) as client:
        first = _turn(client, stream, model="claude/sonnet~tools=1", messages=question, **common)
        kinds = [b.type for b in first.content]
        assert kinds == ["thinking", "text", "tool_use"], kinds
        block = first.content[0]
        assert block.signature == anthropic_mock.sign(block.thinking)
        assert (block.thinking == "") == (display == "omitted")
        call = first.content[2]
        history = [
            *question,
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
            },
        ]
        rid = new_request_id()
        second = _turn(
            client,
            stream,
            model="claude/sonnet",
            messages=history,
            extra_headers={"x-request-id": rid},
            **common,
        )
        assert [b.type for b in second.content] == ["thinking", "text"]
        assert second.content[1].text == "results: sunny"
        sent = claude_mock.wait_for(rid).body_json["messages"][1]["content"]
        assert sent[0] == {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
        # The same history to an OpenAI-format model: thinking is left out, signed or not.
        rid = new_request_id()
        third = _turn(
            client,
            stream,
            model="gpt-4o-mini",
            messages=history,
            extra_headers={"x-request-id": rid},
            **common,
        )
        assert third.content
        assistant = upstream.wait_for(rid).body_json["messages"][1]
        assert assistant["role"] == "assistant" and "thinking" not in json.dumps(assistant)


def test_forged_signature_is_the_upstreams_to_refuse(gw: Gateway, claude_mock: AnthropicMock) -> None:
    """gatecore passes a signature on as the client sent it: a forged one is refused upstream."""
    history = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "forged"},
                                          {"type": "text", "text": "a"}]},
        {"role": "user", "content": "again"},
    ]  # fmt: skip
    body = {"model": "claude/sonnet", "max_tokens": 4096, "messages": history,
            "thinking": {"type": "enabled", "budget_tokens": 2048}}  # fmt: skip
    code, _, data = post_raw(gw, body)
    assert code == 400
    assert "signature" in anthropic_error(data)["message"]


@pytest.mark.parametrize("value", ["b" * 5000, "caf\u00e9-2025-01-01", "a\tb"], ids=["long", "latin1", "tab"])
def test_unsafe_forwarded_values_are_dropped(gw: Gateway, claude_mock: AnthropicMock, value: str) -> None:
    """A value past 4096 characters, or not printable ASCII, is not forwarded (and never a 500)."""
    rid = new_request_id()
    body = {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]}
    code, _, data = post_raw(gw, body, {"x-request-id": rid, "anthropic-beta": value})
    assert code == 200, data
    assert "anthropic-beta" not in claude_mock.wait_for(rid).headers


def test_count_tokens_takes_claude_codes_request(gw: Gateway) -> None:
    """`count_tokens` (Claude Code calls it with `?beta=true` and the same fields) counts what the
    messages route would send, system entries and context edits included."""
    body = copy.deepcopy(CAPTURED["body"])
    for name in ("max_tokens", "stream", "metadata"):
        body.pop(name)
    typed = {k: body.pop(k) for k in ("model", "messages", "system", "tools")}
    with anthropic.Anthropic(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0, timeout=20.0) as client:
        counted = client.beta.messages.count_tokens(**typed, betas=BETAS, extra_body=body)
        smaller = client.beta.messages.count_tokens(
            **{**typed, "tools": typed["tools"][:1]}, betas=BETAS, extra_body=body
        )
    assert counted.input_tokens > smaller.input_tokens > 100
