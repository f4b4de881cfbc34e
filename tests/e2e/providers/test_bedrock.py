"""The `bedrock` provider (Converse / ConverseStream, SigV4, event-stream) end to end with the openai SDK:
the shared conformance cases through this table, then what only Bedrock does."""

from __future__ import annotations

import base64
from typing import Any

import openai
import pytest

from ...upstreams.bedrock_mock import BedrockMock, model_in_path
from ...upstreams.mock_server import RecordedRequest
from ..conftest import make_client, new_request_id
from . import conformance as cf
from .harness import Setup, chat, collect_stream, error_body
from .translated import PLAIN_TOOLS, REMOTE_IMAGE, TURNS

MODEL = "claude"
ACCESS_KEY = "AKIDE2EEXAMPLE"
SECRET = "bedrock-secret-e2e-9f1c/K7MDENG"
TOKEN = "session-token-e2e-55aa"
MODEL_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"
PATH = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake-image").decode()
USER: list[Any] = [{"role": "user", "content": "hello there"}]


def _signed(sent: RecordedRequest) -> None:
    assert sent.status == 200, sent.response_json  # the mock verified the SigV4 signature
    assert model_in_path(sent.path) == MODEL_ID
    assert "Credential=AKIDE2EEXAMPLE/" in sent.headers["authorization"]


def _answered_usage(sent: RecordedRequest) -> cf.Tokens:
    usage = sent.response_json["usage"]
    return cf.Tokens(
        prompt=usage["inputTokens"] + usage["cacheReadInputTokens"],
        completion=usage["outputTokens"],
        cached=3,
    )


def _error(status: int, error_type: str | None, openai_type: str, code: str) -> cf.UpstreamError:
    # The type comes from the x-amzn-ErrorType header.
    return cf.UpstreamError(
        cf.scripted(MODEL, status=status, error="It went wrong.", error_type=error_type),
        status,
        {"message": "It went wrong.", "type": openai_type, "param": None, "code": code},
    )


PROVIDER = {
    "name": "aws", "kind": "bedrock", "aws_region": "eu-west-3", "aws_access_key_id": "${E2E_AWS_KEY_ID}",
    "aws_secret_access_key": "${E2E_AWS_SECRET}", "aws_session_token": "${E2E_AWS_TOKEN}",
}  # fmt: skip
SETUP = Setup(
    mock=lambda: BedrockMock(ACCESS_KEY, SECRET, "eu-west-3"),
    providers=lambda mock: [
        {**PROVIDER, "base_url": mock.base_url},
        {
            **PROVIDER,
            "base_url": mock.base_url,
            "name": "aws-wrong",
            "aws_secret_access_key": "not-the-secret",
        },
    ],
    models={MODEL: ("aws", MODEL_ID), "claude-wrong-key": ("aws-wrong", MODEL_ID)},
    secrets=(SECRET,),
    env={"E2E_AWS_KEY_ID": ACCESS_KEY, "E2E_AWS_SECRET": SECRET, "E2E_AWS_TOKEN": TOKEN},
)


SUITE = cf.Suite(
    chat={
        "signed-multi-turn-with-system": cf.Exchange(
            model=MODEL,
            messages=TURNS,
            reply="mock: how are you",
            usage=_answered_usage,
            sent=cf.Sent(
                path=f"{PATH}/converse",
                headers={"x-amz-security-token": TOKEN},
                body={
                    "system": [{"text": "be brief"}],
                    "messages": [
                        {"role": "user", "content": [{"text": "hi"}]},
                        {"role": "assistant", "content": [{"text": "hello"}]},
                        {"role": "user", "content": [{"text": "how are you"}]},
                    ],
                },
                check=_signed,
            ),
        )
    },
    stream={
        MODEL: cf.Exchange(
            model=MODEL,
            reply="mock: hello there",
            usage=cf.Tokens(completion=3),
            sent=cf.Sent(path=f"{PATH}/converse-stream", check=_signed),
        )
    },
    finish_reasons={
        stop: cf.Finish(cf.scripted(MODEL, finish=stop), finish)
        for stop, finish in [("max_tokens", "length"), ("guardrail_intervened", "content_filter")]
    },
    upstream_errors={
        "400": _error(400, None, "invalid_request_error", "validation_exception"),
        "429": _error(429, None, "rate_limit_error", "throttling_exception"),
        "403": _error(403, None, "permission_error", "access_denied_exception"),
        "424": _error(424, None, "api_error", "model_error_exception"),
        "503": _error(503, None, "api_error", "service_unavailable_exception"),
        "400-quota": _error(
            400, "ServiceQuotaExceededException", "rate_limit_error", "service_quota_exceeded_exception"
        ),
    },
    broken_streams={
        "bad_crc": cf.BrokenStream(cf.scripted(MODEL, corrupt="bad_crc"), "CRC mismatch"),
        "truncated": cf.BrokenStream(cf.scripted(MODEL, corrupt="truncated"), "truncated"),
        "no_stop": cf.BrokenStream(cf.scripted(MODEL, corrupt="no_stop"), "messageStop"),
        "exception": cf.BrokenStream(cf.scripted(MODEL, corrupt="exception"), "modelStreamErrorException"),
        "bad_json": cf.BrokenStream(cf.scripted(MODEL, corrupt="bad_json"), "not a JSON object"),
        # The same frames under a wrong content type still decode (the framing is what is checked); a
        # cut stream does not.
        "wrong-content-type-cut": cf.BrokenStream(cf.scripted(MODEL, content_type="text/html", cut_after=2)),
    },
    rejected={
        "image-url": cf.Rejected(
            MODEL,
            REMOTE_IMAGE,
            "messages[0].content[0].image_url",
        ),
        "json-mode": cf.Rejected(MODEL, {"response_format": {"type": "json_object"}}, "response_format"),
        "n": cf.Rejected(MODEL, {"n": 3}, "n"),
        "seed": cf.Rejected(MODEL, {"seed": 1}, "seed"),
    },
    translations={
        "inference-config": cf.Translation(
            MODEL,
            {"messages": USER, "max_tokens": 99, "temperature": 0.2, "top_p": 0.8, "stop": "STOP"},
            cf.Sent(
                body={
                    "inferenceConfig": {
                        "maxTokens": 99,
                        "temperature": 0.2,
                        "topP": 0.8,
                        "stopSequences": ["STOP"],
                    }
                }
            ),
        ),
        "tool-results-as-blocks": cf.Translation(
            MODEL,
            {
                "messages": [
                    {"role": "user", "content": "weather and time?"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "tu_1",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                            },
                            {
                                "id": "tu_2",
                                "type": "function",
                                "function": {"name": "get_time", "arguments": "{}"},
                            },
                        ],
                    },
                    {"role": "tool", "tool_call_id": "tu_1", "content": "sunny"},
                    {"role": "tool", "tool_call_id": "tu_2", "content": "noon"},
                ],
                "tools": PLAIN_TOOLS,
                "tool_choice": {"type": "function", "function": {"name": "get_time"}},
            },
            cf.Sent(
                body={
                    "messages": [
                        {"role": "user", "content": [{"text": "weather and time?"}]},
                        {
                            "role": "assistant",
                            "content": [
                                {
                                    "toolUse": {
                                        "toolUseId": "tu_1",
                                        "name": "get_weather",
                                        "input": {"city": "Oslo"},
                                    }
                                },
                                {"toolUse": {"toolUseId": "tu_2", "name": "get_time", "input": {}}},
                            ],
                        },
                        {
                            "role": "user",
                            "content": [
                                {"toolResult": {"toolUseId": "tu_1", "content": [{"text": "sunny"}]}},
                                {"toolResult": {"toolUseId": "tu_2", "content": [{"text": "noon"}]}},
                            ],
                        },
                    ]
                },
                check=lambda sent: _tool_choice_is(sent, {"tool": {"name": "get_time"}}),
            ),
        ),
        "image-bytes": cf.Translation(
            MODEL,
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "what is this"},
                            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                        ],
                    }
                ]
            },
            cf.Sent(
                body={
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {"text": "what is this"},
                                {"image": {"format": "png", "source": {"bytes": PNG}}},
                            ],
                        }
                    ]
                }
            ),
        ),
    },
    tool_calls={
        "two-tools": cf.ToolCalls(
            cf.scripted(
                MODEL,
                tool_calls=[
                    ("get_weather", {"city": "Paris", "unit": "C"}),
                    ("get_time", {"tz": "Europe/Paris"}),
                ],
            ),
            {"messages": USER, "tools": PLAIN_TOOLS, "tool_choice": "required"},
            [
                ("tooluse_0", "get_weather", {"city": "Paris", "unit": "C"}),
                ("tooluse_1", "get_time", {"tz": "Europe/Paris"}),
            ],
            cf.Sent(
                body={
                    "toolConfig": {
                        "toolChoice": {"any": {}},
                        "tools": [
                            {
                                "toolSpec": {
                                    "name": f,
                                    "description": f"{f} tool",
                                    "inputSchema": {"json": {"type": "object"}},
                                }
                            }
                            for f in ("get_weather", "get_time")
                        ],
                    }
                }
            ),
        )
    },
)
globals().update(SUITE.tests())


def _tool_choice_is(sent: RecordedRequest, choice: dict[str, Any]) -> None:
    assert sent.body_json["toolConfig"]["toolChoice"] == choice


def test_wrong_secret_is_rejected_by_the_signature_check(target: cf.Target) -> None:
    with make_client(target.gw) as client, pytest.raises(openai.PermissionDeniedError) as info:
        chat(client, model="claude-wrong-key", messages=USER)
    assert error_body(info.value)["type"] == "authentication_error"
    assert error_body(info.value)["code"] == "invalid_signature_exception"
    assert "not-the-secret" not in target.gw.output()


def test_wrong_content_type_alone_still_decodes(target: cf.Target, mock: BedrockMock) -> None:
    """The framing is what is checked: the same frames under text/html are a stream like any other."""
    rid = new_request_id()
    mock.script(rid, content_type="text/html")
    result = collect_stream(target.gw, rid, model=MODEL, messages=USER)
    assert result.error is None
    assert result.text == "mock: hello there"
