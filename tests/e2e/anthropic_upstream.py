"""The gateway the Anthropic-upstream suites share: one Anthropic provider (tests/upstreams/anthropic_mock.py)
behind the wildcard model ``claude/*``, and an openai SDK client for it. Imported by the test modules as
pytest fixtures (registered under the names `mock`, `gw` and `client`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from ..upstreams.anthropic_mock import API_KEY, AnthropicMock
from .gateway import MASTER_KEY, Gateway, GatewayFactory
from .translated import client_for, provider_config

SECRETS = (API_KEY, MASTER_KEY)
USER: list[Any] = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module", name="mock")
def anthropic_mock_fixture() -> Iterator[AnthropicMock]:
    with AnthropicMock() as upstream:
        yield upstream


@pytest.fixture(name="gw")
def anthropic_gateway_fixture(mock: AnthropicMock, gateway_factory: GatewayFactory) -> Gateway:
    provider = {
        "name": "claude",
        "kind": "anthropic",
        "base_url": mock.origin,
        "api_key": API_KEY,
        "default_max_tokens": 333,
    }
    return gateway_factory(provider_config(provider, "claude"))


@pytest.fixture(name="client")
def openai_client_fixture(gw: Gateway) -> Iterator[openai.OpenAI]:
    with client_for(gw) as c:
        yield c
