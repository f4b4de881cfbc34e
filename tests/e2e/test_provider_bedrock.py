"""The `bedrock` provider (Converse / ConverseStream, SigV4, event-stream) end to end with the openai SDK."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import openai
import pytest

from ..upstreams.bedrock_mock import BedrockMock, model_in_path
from .conftest import make_client
from .gateway import Gateway
from .provider_harness import chat, collect_stream, error_body, gateway_for, new_request_id, tool_calls_of

ACCESS_KEY = "AKIDE2EEXAMPLE"
SECRET = "bedrock-secret-e2e-9f1c/K7MDENG"
TOKEN = "session-token-e2e-55aa"
MODEL_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake-image").decode()
TOOLS: list[dict[str, object]] = [
    {
        "type": "function",
        "function": {"name": f, "description": f"{f} tool", "parameters": {"type": "object"}},
    }
    for f in ("get_weather", "get_time")
]
USER = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def mock() -> Iterator[BedrockMock]:
    with BedrockMock(ACCESS_KEY, SECRET, "eu-west-3") as m:
        yield m


@pytest.fixture(scope="module")
def gw(mock: BedrockMock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    provider = {
        "name": "aws", "kind": "bedrock", "base_url": mock.base_url, "aws_region": "eu-west-3",
        "aws_access_key_id": "${E2E_AWS_KEY_ID}", "aws_secret_access_key": "${E2E_AWS_SECRET}",
        "aws_session_token": "${E2E_AWS_TOKEN}",
    }  # fmt: skip
    wrong = {**provider, "name": "aws-wrong", "aws_secret_access_key": "not-the-secret"}
    env = {"E2E_AWS_KEY_ID": ACCESS_KEY, "E2E_AWS_SECRET": SECRET, "E2E_AWS_TOKEN": TOKEN}
    extra = [{"name": "claude-wrong-key", "deployments": [{"provider": "aws-wrong", "model": MODEL_ID}]}]
    with gateway_for(
        tmp_path_factory, provider, {"claude": MODEL_ID}, extra_providers=[wrong], extra_models=extra, env=env
    ) as g:
        yield g


@pytest.fixture
def client(gw: Gateway) -> Iterator[openai.OpenAI]:
    with make_client(gw) as c:
        yield c


def test_non_stream_signed_multi_turn_with_system(
    client: openai.OpenAI, mock: BedrockMock, gw: Gateway
) -> None:
    rid = new_request_id()
    resp = chat(
        client,
        model="claude",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "how are you"},
        ],
        extra_headers={"x-request-id": rid},
    )
    assert resp.choices[0].message.content == "mock: how are you"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == "claude"
    sent = mock.wait_for(rid)
    assert sent.status == 200, sent.response_json  # the mock verified the SigV4 signature
    assert sent.path == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    assert model_in_path(sent.path) == MODEL_ID
    assert sent.headers["x-amz-security-token"] == TOKEN
    assert "Credential=AKIDE2EEXAMPLE/" in sent.headers["authorization"]
    assert sent.body_json["system"] == [{"text": "be brief"}]
    assert sent.body_json["messages"] == [
        {"role": "user", "content": [{"text": "hi"}]},
        {"role": "assistant", "content": [{"text": "hello"}]},
        {"role": "user", "content": [{"text": "how are you"}]},
    ]
    usage = sent.response_json["usage"]
    assert resp.usage is not None
    assert resp.usage.completion_tokens == usage["outputTokens"]
    assert resp.usage.prompt_tokens == usage["inputTokens"] + usage["cacheReadInputTokens"]
    assert (
        resp.usage.prompt_tokens_details is not None and resp.usage.prompt_tokens_details.cached_tokens == 3
    )
    assert SECRET not in gw.output()


def test_stream_text_and_usage(gw: Gateway, mock: BedrockMock) -> None:
    rid = new_request_id()
    result = collect_stream(gw, rid, model="claude", messages=USER, stream_options={"include_usage": True})
    assert result.error is None
    assert result.text == "mock: hello there"
    assert result.finish_reason == "stop"
    sent = mock.wait_for(rid)
    assert sent.path.endswith("/converse-stream") and sent.status == 200
    usage = result.chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 3


def test_inference_config(client: openai.OpenAI, mock: BedrockMock) -> None:
    rid = new_request_id()
    chat(client,
        model="claude", messages=USER, max_tokens=99, temperature=0.2, top_p=0.8, stop="STOP",
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    body = mock.wait_for(rid).body_json
    assert body["inferenceConfig"] == {
        "maxTokens": 99,
        "temperature": 0.2,
        "topP": 0.8,
        "stopSequences": ["STOP"],
    }


@pytest.mark.parametrize(
    ("stop", "finish"), [("max_tokens", "length"), ("guardrail_intervened", "content_filter")]
)
def test_stop_reasons(client: openai.OpenAI, mock: BedrockMock, stop: str, finish: str) -> None:
    rid = new_request_id()
    mock.script(rid, finish=stop)
    resp = chat(client, model="claude", messages=USER, extra_headers={"x-request-id": rid})
    assert resp.choices[0].finish_reason == finish


def test_two_tools_streamed_in_order(gw: Gateway, mock: BedrockMock) -> None:
    rid = new_request_id()
    mock.script(
        rid,
        tool_calls=[("get_weather", {"city": "Paris", "unit": "C"}), ("get_time", {"tz": "Europe/Paris"})],
    )
    result = collect_stream(gw, rid, model="claude", messages=USER, tools=TOOLS, tool_choice="required")
    assert result.error is None
    calls = tool_calls_of(result.chunks)
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert [c["id"] for c in calls] == ["tooluse_0", "tooluse_1"]
    assert [json.loads(c["arguments"]) for c in calls] == [
        {"city": "Paris", "unit": "C"},
        {"tz": "Europe/Paris"},
    ]
    assert result.finish_reason == "tool_calls"
    config = mock.wait_for(rid).body_json["toolConfig"]
    assert config["toolChoice"] == {"any": {}}
    assert config["tools"][0] == {
        "toolSpec": {
            "name": "get_weather",
            "description": "get_weather tool",
            "inputSchema": {"json": {"type": "object"}},
        }
    }


def test_tool_results_go_back_as_tool_result_blocks(client: openai.OpenAI, mock: BedrockMock) -> None:
    rid = new_request_id()
    chat(client,
        model="claude",
        messages=[
            {"role": "user", "content": "weather and time?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "tu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
                {"id": "tu_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ]},
            {"role": "tool", "tool_call_id": "tu_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "tu_2", "content": "noon"},
        ],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    body = mock.wait_for(rid).body_json
    assert body["messages"][1] == {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "tu_1", "name": "get_weather", "input": {"city": "Oslo"}}},
        {"toolUse": {"toolUseId": "tu_2", "name": "get_time", "input": {}}},
    ]}  # fmt: skip
    assert body["messages"][2] == {"role": "user", "content": [
        {"toolResult": {"toolUseId": "tu_1", "content": [{"text": "sunny"}]}},
        {"toolResult": {"toolUseId": "tu_2", "content": [{"text": "noon"}]}},
    ]}  # fmt: skip
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": "get_time"}}


def test_image_bytes_reach_converse(client: openai.OpenAI, mock: BedrockMock) -> None:
    rid = new_request_id()
    chat(client,
        model="claude",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ]}],
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    assert mock.wait_for(rid).body_json["messages"][0]["content"] == [
        {"text": "what is this"}, {"image": {"format": "png", "source": {"bytes": PNG}}}
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]},
         "messages[0].content[0].image_url"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"n": 3}, "n"),
        ({"seed": 1}, "seed"),
    ],
)  # fmt: skip
def test_untranslatable_fields_are_400(client: openai.OpenAI, extra: dict[str, object], param: str) -> None:
    body: dict[str, object] = {"model": "claude", "messages": USER, **extra}
    with pytest.raises(openai.BadRequestError) as info:
        chat(client, **body)
    assert error_body(info.value)["param"] == param


@pytest.mark.parametrize(
    ("status", "error_type", "openai_type", "code"),
    [
        (400, None, "invalid_request_error", "validation_exception"),
        (429, None, "rate_limit_error", "throttling_exception"),
        (403, None, "permission_error", "access_denied_exception"),
        (424, None, "api_error", "model_error_exception"),
        (503, None, "api_error", "service_unavailable_exception"),
        (400, "ServiceQuotaExceededException", "rate_limit_error", "service_quota_exceeded_exception"),
    ],
)
def test_upstream_errors_map(
    client: openai.OpenAI, mock: BedrockMock, status: int, error_type: str | None, openai_type: str, code: str
) -> None:
    rid = new_request_id()
    mock.script(rid, status=status, error="It went wrong.", error_type=error_type)
    with pytest.raises(openai.APIStatusError) as info:
        chat(client, model="claude", messages=USER, extra_headers={"x-request-id": rid})
    assert info.value.status_code == status
    assert error_body(info.value) == {  # the type comes from the x-amzn-ErrorType header
        "message": "It went wrong.", "type": openai_type, "param": None, "code": code
    }  # fmt: skip


def test_wrong_secret_is_rejected_by_the_signature_check(client: openai.OpenAI, gw: Gateway) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        chat(client, model="claude-wrong-key", messages=USER)
    assert error_body(info.value)["type"] == "authentication_error"
    assert error_body(info.value)["code"] == "invalid_signature_exception"
    assert "not-the-secret" not in gw.output()


@pytest.mark.parametrize(
    ("corrupt", "needle"),
    [
        ("bad_crc", "CRC mismatch"),
        ("truncated", "truncated"),
        ("no_stop", "messageStop"),
        ("exception", "modelStreamErrorException"),
        ("bad_json", "not a JSON object"),
    ],
)
def test_malformed_streams_end_with_error(gw: Gateway, mock: BedrockMock, corrupt: str, needle: str) -> None:
    rid = new_request_id()
    mock.script(rid, corrupt=corrupt)
    result = collect_stream(gw, rid, model="claude", messages=USER)
    assert result.error is not None, "the stream ended without an error"
    assert needle in str(result.error.message)
    assert result.elapsed < 5


def test_wrong_content_type_stream_ends_with_error(gw: Gateway, mock: BedrockMock) -> None:
    rid = new_request_id()
    mock.script(rid, content_type="text/html")
    # The same frames under a wrong content type still decode (the framing is what is checked);
    # a cut stream does not.
    mock.script(rid, content_type="text/html", cut_after=2)
    result = collect_stream(gw, rid, model="claude", messages=USER)
    assert result.error is not None
    assert result.elapsed < 5
