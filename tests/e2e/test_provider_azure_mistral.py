"""The OpenAI-like providers: Azure OpenAI (deployment URL, api-key, api-version, content-filter
errors) and Mistral (field renames, its error shapes), end to end with the openai SDK."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from ..upstreams.azure_mock import API_KEY as AZURE_KEY
from ..upstreams.azure_mock import CONTENT_FILTER_MESSAGE, AzureMock
from ..upstreams.mistral_mock import API_KEY as MISTRAL_KEY
from ..upstreams.mistral_mock import MistralMock
from .conftest import new_request_id
from .gateway import MASTER_KEY, Gateway, GatewayFactory
from .translated import WEATHER_TOOLS, client_for, post, provider_config

USER: list[Any] = [{"role": "user", "content": "hello there"}]
SECRETS = (AZURE_KEY, MISTRAL_KEY, MASTER_KEY)


@pytest.fixture(scope="module")
def azure() -> Iterator[AzureMock]:
    with AzureMock() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def mistral() -> Iterator[MistralMock]:
    with MistralMock() as upstream:
        yield upstream


@pytest.fixture
def gw(azure: AzureMock, mistral: MistralMock, gateway_factory: GatewayFactory) -> Gateway:
    config = provider_config(
        {
            "name": "az",
            "kind": "azure",
            "base_url": azure.origin,
            "api_key": AZURE_KEY,
            "api_version": "2024-10-21",
        },
        "az",
    )
    mistral_config = provider_config(
        {"name": "mi", "kind": "mistral", "base_url": mistral.origin + "/v1", "api_key": MISTRAL_KEY}, "mi"
    )
    config["providers"] += mistral_config["providers"]
    config["models"] += mistral_config["models"]
    return gateway_factory(config)


@pytest.fixture
def client(gw: Gateway) -> Iterator[openai.OpenAI]:
    with client_for(gw) as c:
        yield c


@pytest.mark.parametrize("stream", [False, True])
def test_azure_deployment_url_key_and_version(client: openai.OpenAI, azure: AzureMock, stream: bool) -> None:
    rid = new_request_id()
    kwargs: dict[str, Any] = {
        "model": "az/gpt4o-prod",
        "messages": USER,
        "extra_headers": {"x-request-id": rid},
    }
    if stream:
        chunks = list(
            client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs)
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        usage = chunks[-1].usage
        assert all(c.model == "az/gpt4o-prod" for c in chunks)
    else:
        resp = client.chat.completions.create(**kwargs)
        text, usage = resp.choices[0].message.content or "", resp.usage
        assert resp.model == "az/gpt4o-prod"
    assert text == "mock: hello there"
    assert usage is not None and usage.completion_tokens == 3
    received = azure.wait_for(rid)
    assert received.path == "/openai/deployments/gpt4o-prod/chat/completions"
    assert received.query == "api-version=2024-10-21"
    assert received.headers["api-key"] == AZURE_KEY
    assert "authorization" not in received.headers


def test_azure_content_filter_error(gw: Gateway, client: openai.OpenAI) -> None:
    resp = post(gw, {"model": "az/d~content_filter", "messages": USER})
    assert resp.status == 400
    error = resp.json()["error"]
    assert error == {
        "message": CONTENT_FILTER_MESSAGE,
        "type": "invalid_request_error",
        "param": "prompt",
        "code": "content_filter",
    }
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="az/d~content_filter", messages=USER)
    assert info.value.code == "content_filter"


@pytest.mark.parametrize("stream", [False, True])
def test_azure_content_filter_finish_reason_passes(client: openai.OpenAI, stream: bool) -> None:
    kwargs: dict[str, Any] = {"model": "az/d~finish=content_filter", "messages": USER}
    if stream:
        chunks = list(client.chat.completions.create(stream=True, **kwargs))
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    else:
        finishes = [client.chat.completions.create(**kwargs).choices[0].finish_reason]
    assert finishes == ["content_filter"]


@pytest.mark.parametrize(
    ("status", "otype"),
    [(401, "authentication_error"), (404, "not_found_error"), (429, "rate_limit_error"), (500, "api_error")],
)
def test_azure_errors_get_openai_types(gw: Gateway, status: int, otype: str) -> None:
    resp = post(gw, {"model": f"az/d~status={status}", "messages": USER})
    assert resp.status == status
    error = resp.json()["error"]
    assert (
        error["type"] == otype and error["code"] == str(status) and error["message"] == f"mock azure {status}"
    )


def test_azure_wrong_key_is_401_without_leaking(azure: AzureMock, gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(
        provider_config(
            {"name": "az", "kind": "azure", "base_url": azure.origin, "api_key": "az-wrong-key-000"}, "az"
        )
    )
    resp = post(gw, {"model": "az/d", "messages": USER})
    assert resp.status == 401 and b"az-wrong-key-000" not in resp.body


def test_mistral_field_mapping(client: openai.OpenAI, mistral: MistralMock) -> None:
    rid = new_request_id()
    resp = client.chat.completions.create(
        model="mi/mistral-small-latest",
        messages=USER,
        seed=5,
        max_completion_tokens=40,
        user="u1",
        tools=WEATHER_TOOLS,
        tool_choice="required",
        extra_headers={"x-request-id": rid},
    )
    assert resp.choices[0].message.content == "mock: hello there"
    assert resp.model == "mi/mistral-small-latest"
    body = mistral.wait_for(rid).body_json
    assert body["random_seed"] == 5 and "seed" not in body
    assert body["max_tokens"] == 40 and "max_completion_tokens" not in body
    assert body["tool_choice"] == "any"
    assert "user" not in body
    assert body["model"] == "mistral-small-latest"


def test_mistral_stream_usage(client: openai.OpenAI, mistral: MistralMock) -> None:
    rid = new_request_id()
    chunks = list(
        client.chat.completions.create(
            model="mi/mistral-small-latest",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-request-id": rid},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "mock: hello there"
    usage = next(c.usage for c in chunks if c.usage)
    assert usage is not None and usage.completion_tokens == 3
    assert "stream_options" not in mistral.wait_for(rid).body_json


def test_mistral_errors(gw: Gateway) -> None:
    resp = post(gw, {"model": "mi/m~status=429", "messages": USER})
    assert resp.status == 429
    assert resp.json()["error"] == {
        "message": "mock mistral 429",
        "type": "mock_error",
        "param": None,
        "code": "429",
    }
    resp = post(gw, {"model": "mi/m", "messages": USER, "logprobs": True})
    assert resp.status == 400 and resp.json()["error"]["param"] == "logprobs"
    resp = post(gw, {"model": "mi/m", "messages": USER, "safe_promptx": True})
    assert resp.status == 422
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and "safe_promptx" in error["message"]
