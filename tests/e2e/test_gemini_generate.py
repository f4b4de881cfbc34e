"""The Gemini API through gatecore, with the official `google-genai` SDK, served by an OpenAI-format
upstream: text, streams (SSE and the JSON array), what reaches the upstream, function calling round
trips, generation config, usage in the access log, countTokens and the model list."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from google import genai
from google.genai import types

from ..upstreams.openai_mock import MockUpstream
from .conftest import new_request_id
from .gateway import MASTER_KEY, TEAM_KEY, Gateway
from .gemini_client import gemini_post, make_gemini, sse_chunks, steer

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Current weather in a city",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={"city": types.Schema(type=types.Type.STRING)},
        required=["city"],
    ),
)
WEATHER_ARGS = {"city": "Paris", "units": {"temp": "C"}, "note": 'q"uote ü'}
CALL = {"id": "call_w1", "name": "get_weather", "arguments": json.dumps(WEATHER_ARGS)}
PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n-not-really-a-png").decode()


@pytest.fixture
def gemini(gateway: Gateway) -> Iterator[genai.Client]:
    client = make_gemini(gateway)
    yield client
    client.close()


def tagged(rid: str, mock: dict[str, Any] | None = None, **config: Any) -> types.GenerateContentConfig:
    """A config that tags the request with `rid` (x-request-id) and steers the mock."""
    options = types.HttpOptions(headers={"x-request-id": rid}, extra_body={"mock": mock or {}})
    return types.GenerateContentConfig(http_options=options, **config)


def test_generate_content_text(gemini: genai.Client, upstream: MockUpstream) -> None:
    rid = new_request_id()
    config = tagged(
        rid,
        temperature=0.25,
        top_p=0.5,
        max_output_tokens=64,
        stop_sequences=["END"],
        system_instruction="Be brief.",
    )
    answer = gemini.models.generate_content(model="gpt-test", contents="hello there", config=config)
    assert answer.text == "mock: hello there"
    assert answer.candidates is not None and answer.candidates[0].finish_reason == types.FinishReason.STOP
    assert answer.model_version == "gpt-test"
    sent = upstream.wait_for(rid)
    assert sent.path == "/v1/chat/completions"
    body = sent.body_json
    assert body["model"] == "upstream-model-1"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
    ]
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["stop"]) == (0.25, 0.5, 64, ["END"])
    usage = sent.response_json["usage"]
    meta = answer.usage_metadata
    assert meta is not None
    assert meta.prompt_token_count == usage["prompt_tokens"]
    assert meta.candidates_token_count == usage["completion_tokens"]
    assert meta.total_token_count == usage["prompt_tokens"] + usage["completion_tokens"]


def test_stream_sse_is_accounted(gemini: genai.Client, gateway: Gateway, upstream: MockUpstream) -> None:
    rid = new_request_id()
    chunks = list(
        gemini.models.generate_content_stream(
            model="gpt-test", contents="count", config=tagged(rid, {"chunks": 4})
        )
    )
    assert "".join(c.text or "" for c in chunks) == "tok0 tok1 tok2 tok3 "
    assert len(chunks) >= 5  # text deltas go out as they arrive, the finish and usage last
    last = chunks[-1]
    assert last.candidates is not None and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None
    sent = upstream.wait_for(rid)
    assert sent.body_json["stream"] is True
    assert sent.body_json["stream_options"] == {"include_usage": True}
    entry = gateway.wait_access_log(rid)
    assert (entry["status"], entry["endpoint"]) == (200, "gemini")
    assert entry["streamed"] is True
    assert entry["usage_source"] == "upstream"
    assert entry["input_tokens"] == last.usage_metadata.prompt_token_count
    assert entry["output_tokens"] == last.usage_metadata.candidates_token_count


def test_stream_json_array_form(gateway: Gateway) -> None:
    # Without alt=sse the Gemini API streams one JSON array, element by element.
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "mock": {"chunks": 3}}
    status, headers, answer = gemini_post(gateway, "/v1beta/models/gpt-test:streamGenerateContent", body)
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    elements = json.loads(answer)
    assert isinstance(elements, list)
    text = "".join(
        p["text"] for e in elements for c in e["candidates"] for p in c.get("content", {}).get("parts", [])
    )
    assert text == "tok0 tok1 tok2 "
    assert elements[-1]["candidates"][0]["finishReason"] == "STOP"
    assert elements[-1]["usageMetadata"]["totalTokenCount"] > 0


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_function_call_round_trip(gemini: genai.Client, upstream: MockUpstream, stream: bool) -> None:
    tools = [types.Tool(function_declarations=[WEATHER])]
    rid = new_request_id()
    config = tagged(rid, {"tool_calls": [CALL]}, tools=tools)
    if stream:
        chunks = list(
            gemini.models.generate_content_stream(model="gpt-test", contents="weather?", config=config)
        )
        calls = [call for chunk in chunks for call in chunk.function_calls or ()]
    else:
        answer = gemini.models.generate_content(model="gpt-test", contents="weather?", config=config)
        calls = answer.function_calls or []
    assert [(c.id, c.name, c.args) for c in calls] == [("call_w1", "get_weather", WEATHER_ARGS)]
    first = upstream.wait_for(rid).body_json
    assert first["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    # The second turn: the model's call and the function's answer go back as the SDK sends them.
    history = [
        types.Content(role="user", parts=[types.Part(text="weather?")]),
        types.Content(role="model", parts=[types.Part(function_call=calls[0])]),
        types.Content(
            role="user",
            parts=[
                types.Part.from_function_response(name="get_weather", response={"temp": 21}),
                types.Part(text="and now?"),
            ],
        ),
    ]
    rid = new_request_id()
    answer = gemini.models.generate_content(
        model="gpt-test", contents=history, config=tagged(rid, {"content": "It is 21 C."}, tools=tools)
    )
    assert answer.text == "It is 21 C."
    messages = upstream.wait_for(rid).body_json["messages"]
    assert messages[1]["role"] == "assistant" and messages[1]["content"] is None
    [call] = messages[1]["tool_calls"]
    assert (call["id"], call["function"]["name"]) == ("call_w1", "get_weather")
    assert json.loads(call["function"]["arguments"]) == WEATHER_ARGS
    assert messages[2]["role"] == "tool" and messages[2]["tool_call_id"] == "call_w1"
    assert json.loads(messages[2]["content"]) == {"temp": 21}
    assert messages[3] == {"role": "user", "content": "and now?"}


def test_tool_config_and_generation_options_reach_the_upstream(
    gemini: genai.Client, upstream: MockUpstream
) -> None:
    rid = new_request_id()
    schema = types.Schema(
        type=types.Type.OBJECT, properties={"answer": types.Schema(type=types.Type.INTEGER)}
    )
    config = tagged(
        rid,
        tools=[types.Tool(function_declarations=[WEATHER])],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY)
        ),
        response_mime_type="application/json",
        response_schema=schema,
        thinking_config=types.ThinkingConfig(thinking_budget=8000),
        candidate_count=1,
        seed=7,
    )
    gemini.models.generate_content(model="gpt-test", contents="json please", config=config)
    body = upstream.wait_for(rid).body_json
    assert body["tool_choice"] == "required"
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "response",
            "schema": {"type": "object", "properties": {"answer": {"type": "integer"}}},
        },
    }
    assert body.get("reasoning_effort") == "medium", sorted(body)
    assert body["seed"] == 7
    assert "n" not in body


def test_image_and_thoughts(gemini: genai.Client, upstream: MockUpstream) -> None:
    rid = new_request_id()
    contents = [
        types.Content(
            role="user",
            parts=[
                types.Part(text="what is this?"),
                types.Part.from_bytes(data=base64.b64decode(PIXEL), mime_type="image/png"),
            ],
        )
    ]
    config = tagged(
        rid, {"reasoning": "Looking closely."}, thinking_config=types.ThinkingConfig(include_thoughts=True)
    )
    answer = gemini.models.generate_content(model="gpt-test", contents=contents, config=config)
    assert answer.candidates is not None and answer.candidates[0].content is not None
    parts = answer.candidates[0].content.parts or []
    assert (parts[0].thought, parts[0].text) == (True, "Looking closely.")
    message = upstream.wait_for(rid).body_json["messages"][0]
    assert message["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
    ]


def test_count_tokens_grows_with_the_prompt(gemini: genai.Client, upstream: MockUpstream) -> None:
    before = len(upstream.requests)
    short = gemini.models.count_tokens(model="gpt-test", contents="hello")
    longer = gemini.models.count_tokens(model="gpt-test", contents="hello " * 50)
    assert short.total_tokens is not None and longer.total_tokens is not None
    assert 0 < short.total_tokens < longer.total_tokens
    assert len(upstream.requests) == before  # counted by gatecore, never sent


def test_model_list_and_get(gemini: genai.Client, gateway: Gateway) -> None:
    names = {m.name for m in gemini.models.list()}
    assert {"models/gpt-test", "models/gpt-other"} <= names
    model = gemini.models.get(model="gpt-test")
    assert model.name == "models/gpt-test"
    assert model.supported_actions is not None and "generateContent" in model.supported_actions


def test_team_key_sees_only_its_models(gateway: Gateway) -> None:
    status, _, body = gemini_post(gateway, "/v1beta/models", b"", {"x-goog-api-key": TEAM_KEY}, method="GET")
    assert status == 200
    names = {m["name"] for m in json.loads(body)["models"]}
    assert "models/gpt-test" in names and "models/gpt-other" not in names


def test_key_in_the_query_string(gateway: Gateway) -> None:
    body = {"contents": [{"parts": [{"text": "by query"}]}]}
    rid = new_request_id()
    status, _, answer = gemini_post(
        gateway,
        f"/v1beta/models/gpt-test:generateContent?key={MASTER_KEY}",
        body,
        {"x-goog-api-key": "", "x-request-id": rid},
    )
    assert status == 200, answer
    assert json.loads(answer)["candidates"][0]["content"]["parts"] == [{"text": "mock: by query"}]
    entry = gateway.wait_access_log(rid)
    assert entry["status"] == 200
    assert MASTER_KEY not in json.dumps(entry)  # the key in the URL is never logged
    # Streamed with alt=sse and the key after it.
    status, headers, answer = gemini_post(
        gateway,
        f"/v1beta/models/gpt-test:streamGenerateContent?alt=sse&key={MASTER_KEY}",
        body,
        {"x-goog-api-key": ""},
    )
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    chunks = sse_chunks(answer)
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_steer_helper_is_a_config(gemini: genai.Client) -> None:
    # The SDK's per-request extra_body reaches the upstream like any unknown top-level field.
    answer = gemini.models.generate_content(
        model="gpt-test", contents="x", config=steer({"content": "steered"})
    )
    assert answer.text == "steered"


# google-genai's async client subclasses aiohttp's ClientSession, which aiohttp warns about.
@pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
def test_async_client_streams(gemini: genai.Client, upstream: MockUpstream) -> None:
    async def run() -> list[str]:
        rid = new_request_id()
        stream = await gemini.aio.models.generate_content_stream(
            model="gpt-test", contents="async", config=tagged(rid, {"chunks": 3})
        )
        texts = [chunk.text or "" async for chunk in stream]
        assert upstream.wait_for(rid).body_json["stream"] is True
        return texts

    assert "".join(asyncio.run(run())) == "tok0 tok1 tok2 "


def test_v1_api_version(gateway: Gateway) -> None:
    client = genai.Client(
        api_key=MASTER_KEY,
        http_options=types.HttpOptions(
            base_url=gateway.base_url, api_version="v1", retry_options=types.HttpRetryOptions(attempts=1)
        ),
    )
    answer = client.models.generate_content(model="gpt-test", contents="v1 please")
    assert answer.text == "mock: v1 please"
    client.close()
    # An OpenAI model name with a colon (Ollama's style) is still OpenAI's GET.
    status, _, body = gemini_post(
        gateway, "/v1/models/llama3:8b", b"", {"authorization": f"Bearer {MASTER_KEY}"}, "GET"
    )
    assert status == 404 and json.loads(body)["error"]["code"] == "model_not_found"
