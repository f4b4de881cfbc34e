"""OpenAI clients served by an Anthropic Messages upstream: its errors in OpenAI's shape and status,
broken streams, and the request fields it cannot express (400 naming them)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from ..upstreams.anthropic_mock import AnthropicMock
from . import raw_http
from .anthropic_upstream import (  # noqa: F401 (pytest fixtures: mock, gw, client)
    SECRETS,
    USER,
    anthropic_gateway_fixture,
    anthropic_mock_fixture,
    openai_client_fixture,
)
from .gateway import MASTER_KEY, Gateway, GatewayFactory
from .translated import WEATHER_TOOLS, assert_stream_ended_with_error, post, provider_config, raw_stream


@pytest.mark.parametrize(
    ("status", "etype", "otype", "exc"),
    [
        (400, "invalid_request_error", "invalid_request_error", openai.BadRequestError),
        (401, "authentication_error", "authentication_error", openai.AuthenticationError),
        (403, "permission_error", "permission_error", openai.PermissionDeniedError),
        (404, "not_found_error", "not_found_error", openai.NotFoundError),
        (413, "request_too_large", "invalid_request_error", openai.APIStatusError),
        (429, "rate_limit_error", "rate_limit_error", openai.RateLimitError),
        (500, "api_error", "api_error", openai.InternalServerError),
        (529, "overloaded_error", "api_error", openai.InternalServerError),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_map_to_openai_shape(
    client: openai.OpenAI,
    gw: Gateway,
    status: int,
    etype: str,
    otype: str,
    exc: type[Exception],
    stream: bool,
) -> None:
    with pytest.raises(exc) as info:
        client.chat.completions.create(
            model=f"claude/claude-mock~status={status}", messages=USER, stream=stream
        )
    assert isinstance(info.value, openai.APIStatusError)
    assert info.value.status_code == status
    resp = post(gw, {"model": f"claude/claude-mock~status={status}", "messages": USER, "stream": stream})
    error = resp.json()["error"]
    assert error["type"] == otype
    assert error["message"] == f"mock {etype} ({status})"
    assert {"message", "type", "param", "code"} <= set(error)
    if status == 529:
        assert error["code"] == "overloaded"
    for secret in SECRETS:
        assert secret.encode() not in resp.body


def test_wrong_upstream_key_is_401_without_leaking_it(
    mock: AnthropicMock, gateway_factory: GatewayFactory
) -> None:
    provider = {
        "name": "claude",
        "kind": "anthropic",
        "base_url": mock.origin,
        "api_key": "sk-ant-wrong-key-123",
    }
    gw = gateway_factory(provider_config(provider, "claude"))
    resp = post(gw, {"model": "claude/claude-mock", "messages": USER})
    assert resp.status == 401
    assert resp.json()["error"]["type"] == "authentication_error"
    assert b"sk-ant-wrong-key-123" not in resp.body


@pytest.mark.parametrize(
    "steer",
    [
        "stream_error",
        "badjson=3",
        "no_stop",
        "cut=4",
        "truncate~no_stop",
        "ctype=application/json",
        "ctype=text/html",
    ],
)
def test_malformed_streams_end_with_an_error_event(gw: Gateway, steer: str) -> None:
    result = raw_stream(gw, {"model": f"claude/claude-mock~{steer}", "messages": USER, "stream": True})
    error = assert_stream_ended_with_error(result, SECRETS)
    if steer == "stream_error":
        assert "overloaded_error" in error["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 2),
        ("logprobs", True),
        ("seed", 7),
        ("presence_penalty", 0.5),
        ("logit_bias", {"50256": -100}),
    ],
)
def test_untranslatable_fields_are_400_naming_them(gw: Gateway, field: str, value: Any) -> None:
    resp = post(gw, {"model": "claude/claude-mock", "messages": USER, field: value})
    assert resp.status == 400
    error = resp.json()["error"]
    assert error["param"] == field
    assert error["type"] == "invalid_request_error"
    assert field in error["message"]


def test_json_mode_with_tools_is_400(gw: Gateway) -> None:
    body = {
        "model": "claude/claude-mock",
        "messages": USER,
        "tools": WEATHER_TOOLS,
        "response_format": {"type": "json_object"},
    }
    resp = post(gw, body)
    assert resp.status == 400 and resp.json()["error"]["param"] == "response_format"


def test_bad_tool_arguments_and_audio_parts_are_400(gw: Gateway) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{no"}}],
        },
        {"role": "tool", "tool_call_id": "a", "content": "r"},
    ]
    resp = post(gw, {"model": "claude/claude-mock", "messages": messages})
    assert resp.status == 400
    assert resp.json()["error"]["param"] == "messages[1].tool_calls[0].function.arguments"
    audio = [
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}
    ]
    resp = post(gw, {"model": "claude/claude-mock", "messages": audio})
    assert resp.status == 400 and resp.json()["error"]["param"] == "messages[0].content[0].type"


def test_embeddings_endpoint_is_400_naming_it(gw: Gateway) -> None:
    resp = raw_http.post_json(
        gw.port, "/v1/embeddings", {"model": "claude/claude-mock", "input": "x"}, MASTER_KEY
    )
    assert resp.status == 400
    assert "embeddings" in resp.json()["error"]["message"]
