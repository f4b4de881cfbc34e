"""An upstream's `Retry-After` on 429/503/529 reaches the client, OpenAI's and Anthropic's SDKs alike,
from an OpenAI pass-through, an Anthropic and a Bedrock upstream; malformed values and other statuses
are not relayed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from ..upstreams import anthropic_mock
from ..upstreams.anthropic_mock import AnthropicMock
from ..upstreams.bedrock_mock import BedrockMock
from ..upstreams.openai_mock import MockUpstream
from .anthropic_client import make_anthropic, post_raw
from .conftest import make_client, new_request_id
from .gateway import MASTER_KEY, Gateway, GatewayFactory

ACCESS_KEY = "AKIDRETRYAFTER"
AWS_SECRET = "bedrock-secret-retry-after-1b2c"
HTTP_DATE = "Wed, 21 Oct 2026 07:28:00 GMT"
TIMEOUTS = {"connect": 2, "first_byte": 5, "idle": 5, "total": 10}
USER: list[Any] = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def claude_mock() -> Iterator[AnthropicMock]:
    with AnthropicMock() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def bedrock() -> Iterator[BedrockMock]:
    with BedrockMock(ACCESS_KEY, AWS_SECRET, "us-east-1") as upstream:
        yield upstream


@pytest.fixture
def gw(
    upstream: MockUpstream, claude_mock: AnthropicMock, bedrock: BedrockMock, gateway_factory: GatewayFactory
) -> Gateway:
    providers = [
        {"name": "oai", "kind": "openai", "base_url": upstream.base_url},
        {"name": "claude", "kind": "anthropic", "base_url": claude_mock.origin, "api_key": anthropic_mock.API_KEY},
        {"name": "aws", "kind": "bedrock", "base_url": bedrock.base_url, "aws_region": "us-east-1",
         "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": AWS_SECRET},
    ]  # fmt: skip
    models = [
        {"name": "gpt", "deployments": [{"provider": "oai", "model": "upstream-model-1"}], "timeouts": TIMEOUTS},
        {"name": "claude/*", "deployments": [{"provider": "claude", "model": "*"}], "timeouts": TIMEOUTS},
        {"name": "aws", "deployments": [{"provider": "aws", "model": "anthropic.claude-3-haiku-20240307-v1:0"}],
         "timeouts": TIMEOUTS},
    ]  # fmt: skip
    return gateway_factory({"providers": providers, "models": models, "auth": {"master_key": MASTER_KEY}})


def _steer(status: int, retry_after: str) -> dict[str, Any]:
    return {"mock": {"status": status, "headers": {"Retry-After": retry_after}}}


@pytest.mark.parametrize(
    ("status", "value", "error_class"),
    [
        (429, "7", openai.RateLimitError),
        (503, HTTP_DATE, openai.InternalServerError),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_openai_client_gets_the_upstream_retry_after(
    gw: Gateway, status: int, value: str, error_class: type[openai.APIStatusError], stream: bool
) -> None:
    with make_client(gw) as client, pytest.raises(error_class) as caught:
        client.chat.completions.create(
            model="gpt", messages=USER, stream=stream, extra_body=_steer(status, value)
        )
    assert caught.value.status_code == status
    assert caught.value.response.headers.get("retry-after") == value


def test_anthropic_client_of_an_openai_upstream_gets_it(gw: Gateway) -> None:
    with make_anthropic(gw) as claude, pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model="gpt", max_tokens=20, messages=USER, extra_body=_steer(429, "12"))
    assert caught.value.response.headers.get("retry-after") == "12"
    assert isinstance(caught.value.body, dict) and caught.value.body["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize(
    ("status", "sdk_error"), [(429, anthropic.RateLimitError), (529, anthropic.InternalServerError)]
)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_anthropic_client_of_an_anthropic_upstream_gets_it(
    gw: Gateway, status: int, sdk_error: type[anthropic.APIStatusError], stream: bool
) -> None:
    model = f"claude/claude-mock~status={status}~retry=30"
    with make_anthropic(gw) as claude, pytest.raises(sdk_error) as caught:
        if stream:
            with claude.messages.stream(model=model, max_tokens=20, messages=USER) as s:
                s.get_final_message()
        else:
            claude.messages.create(model=model, max_tokens=20, messages=USER)
    assert caught.value.status_code == status
    assert caught.value.response.headers.get("retry-after") == "30"


def test_openai_client_of_an_anthropic_upstream_gets_it(gw: Gateway) -> None:
    with make_client(gw) as client, pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="claude/claude-mock~status=429~retry=4", messages=USER)
    assert caught.value.response.headers.get("retry-after") == "4"


def test_bedrock_throttling_retry_after(gw: Gateway, bedrock: BedrockMock) -> None:
    rid = new_request_id()
    bedrock.script(rid, status=429, retry_after="9")
    with make_client(gw) as client, pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="aws", messages=USER, extra_headers={"x-request-id": rid})
    assert caught.value.response.headers.get("retry-after") == "9"


@pytest.mark.parametrize(
    ("status", "value"),
    [
        (429, "soon"),  # neither delay-seconds nor an HTTP-date
        (429, "-3"),
        (400, "5"),  # Retry-After means nothing on a 400: not relayed
        (500, "5"),
    ],
)
def test_not_relayed_when_malformed_or_meaningless(gw: Gateway, status: int, value: str) -> None:
    with make_client(gw) as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="gpt", messages=USER, extra_body=_steer(status, value))
    assert caught.value.status_code == status
    assert "retry-after" not in caught.value.response.headers


def test_raw_anthropic_error_answer_carries_the_header(gw: Gateway) -> None:
    status, headers, _ = post_raw(
        gw, {"model": "claude/claude-mock~status=529~retry=2", "max_tokens": 5, "messages": USER}
    )
    assert status == 529
    assert headers["retry-after"] == "2"
    assert headers["content-type"] == "application/json"
