"""A Gemini client served by a Gemini upstream through the hub format (google-genai SDK → gatecore's
Gemini route → OpenAI chat → the `gemini` provider → tests/upstreams/gemini_mock.py): the request
arrives upstream as Gemini sent it (thinking budget included: the Gemini CLI sends one on every
turn), the function call comes back to the client, usage is kept."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.genai import types

from ..upstreams.gemini_mock import API_KEY, GeminiMock
from .gateway import MASTER_KEY, Gateway, GatewayFactory
from .gemini_client import make_gemini

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    parameters=types.Schema(
        type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}, required=["city"]
    ),
)


@pytest.fixture
def google() -> Iterator[GeminiMock]:
    with GeminiMock() as mock:
        yield mock


@pytest.fixture
def gemini_gateway(gateway_factory: GatewayFactory, google: GeminiMock) -> Gateway:
    return gateway_factory(
        {
            "server": {"access_log": True},
            "providers": [
                {"name": "google", "kind": "gemini", "base_url": google.origin, "api_key": API_KEY}
            ],
            "models": [{"name": "gem/*", "deployments": [{"provider": "google", "model": "*"}]}],
            "auth": {"master_key": MASTER_KEY},
        }
    )


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_gemini_to_gemini_with_thinking_and_a_function_call(
    gemini_gateway: Gateway, google: GeminiMock, stream: bool
) -> None:
    client = make_gemini(gemini_gateway)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        thinking_config=types.ThinkingConfig(thinking_budget=8192, include_thoughts=True),
        temperature=1.0,
        max_output_tokens=100,
    )
    model = "gem/gemini-mock~tools=1~thoughts=5"
    if stream:
        chunks = list(client.models.generate_content_stream(model=model, contents="weather?", config=config))
        calls = [c for chunk in chunks for c in chunk.function_calls or ()]
        usage = chunks[-1].usage_metadata
    else:
        answer = client.models.generate_content(model=model, contents="weather?", config=config)
        calls = answer.function_calls or []
        usage = answer.usage_metadata
    client.close()
    assert [c.name for c in calls] == ["get_weather"]
    assert usage is not None and usage.thoughts_token_count == 5
    [sent] = [r for r in google.requests if "generateContent" in r.path or "streamGenerateContent" in r.path]
    generation = sent.body_json["generationConfig"]
    assert generation["thinkingConfig"] == {"thinkingBudget": 8192}  # medium, both ways
    assert (generation["temperature"], generation["maxOutputTokens"]) == (1.0, 100)
    assert sent.body_json["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    assert sent.path.endswith(
        "/gemini-mock~tools=1~thoughts=5:" + ("streamGenerateContent" if stream else "generateContent")
    )
