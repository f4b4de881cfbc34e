"""The `ollama` provider (native /api/chat, NDJSON streams) end to end with the openai SDK."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import openai
import pytest

from ..upstreams.ollama_mock import OllamaMock
from .conftest import make_client
from .gateway import Gateway
from .provider_harness import chat, collect_stream, error_body, gateway_for, new_request_id, tool_calls_of

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake-image").decode()
TOOLS: list[dict[str, object]] = [
    {
        "type": "function",
        "function": {"name": f, "description": f"{f} tool", "parameters": {"type": "object"}},
    }
    for f in ("get_weather", "get_time")
]


@pytest.fixture(scope="module")
def mock() -> Iterator[OllamaMock]:
    with OllamaMock() as m:
        yield m


@pytest.fixture(scope="module")
def gw(mock: OllamaMock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    provider = {"name": "local-ollama", "kind": "ollama", "base_url": mock.base_url}
    # llama3.2:3b is text-only in the shipped model table; these tests check how images translate.
    vision = {"capabilities": {"vision": True}}
    with gateway_for(tmp_path_factory, provider, {"llama": "llama3.2:3b"}, model_options=vision) as g:
        yield g


@pytest.fixture
def client(gw: Gateway) -> Iterator[openai.OpenAI]:
    with make_client(gw) as c:
        yield c


def test_non_stream_multi_turn_with_system(client: openai.OpenAI, mock: OllamaMock) -> None:
    rid = new_request_id()
    resp = chat(
        client,
        model="llama",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "how are you"},
        ],
        extra_headers={"x-request-id": rid},
    )
    assert resp.model == "llama"
    assert resp.choices[0].message.content == "mock: how are you"
    assert resp.choices[0].finish_reason == "stop"
    sent = mock.wait_for(rid)
    assert sent.path == "/api/chat"
    assert sent.body_json["model"] == "llama3.2:3b"
    assert sent.body_json["stream"] is False
    assert sent.body_json["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "how are you"},
    ]
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == sent.response_json["prompt_eval_count"]
    assert resp.usage.completion_tokens == sent.response_json["eval_count"]


def test_stream_text_and_usage(gw: Gateway, mock: OllamaMock) -> None:
    rid = new_request_id()
    result = collect_stream(
        gw, rid, model="llama", messages=[{"role": "user", "content": "stream me"}],
        stream_options={"include_usage": True},
    )  # fmt: skip
    assert result.error is None
    assert result.text == "mock: stream me"
    assert result.chunks[0].choices[0].delta.role == "assistant"
    assert result.finish_reason == "stop"
    assert {c.model for c in result.chunks} == {"llama"}
    usage = result.chunks[-1].usage
    assert usage is not None and not result.chunks[-1].choices
    final = json.loads(mock.wait_for(rid).events[-1])
    assert (usage.prompt_tokens, usage.completion_tokens) == (final["prompt_eval_count"], final["eval_count"])
    assert mock.wait_for(rid).headers["content-type"] == "application/json"


def test_stream_without_include_usage_hides_usage_chunk(gw: Gateway) -> None:
    result = collect_stream(gw, new_request_id(), model="llama", messages=[{"role": "user", "content": "x"}])
    assert result.error is None
    assert all(c.choices for c in result.chunks)


def test_sampling_params_map_to_options(client: openai.OpenAI, mock: OllamaMock) -> None:
    rid = new_request_id()
    chat(client,
        model="llama", messages=[{"role": "user", "content": "x"}], temperature=0.3, top_p=0.9,
        max_tokens=17, stop=["END"], seed=7, response_format={"type": "json_object"},
        extra_body={"top_k": 40}, extra_headers={"x-request-id": rid},
    )  # fmt: skip
    body = mock.wait_for(rid).body_json
    assert body["options"] == {
        "temperature": 0.3, "top_p": 0.9, "top_k": 40, "seed": 7, "num_predict": 17, "stop": ["END"]
    }  # fmt: skip
    assert body["format"] == "json"


def test_json_schema_becomes_format(client: openai.OpenAI, mock: OllamaMock) -> None:
    rid = new_request_id()
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    chat(client,
        model="llama", messages=[{"role": "user", "content": "x"}],
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    assert mock.wait_for(rid).body_json["format"] == schema


def test_length_finish_reason(client: openai.OpenAI, mock: OllamaMock) -> None:
    rid = new_request_id()
    mock.script(rid, finish="length")
    resp = chat(
        client,
        model="llama",
        messages=[{"role": "user", "content": "x"}],
        extra_headers={"x-request-id": rid},
    )
    assert resp.choices[0].finish_reason == "length"


def test_two_tools_streamed_in_order(gw: Gateway, mock: OllamaMock) -> None:
    rid = new_request_id()
    mock.script(rid, tool_calls=[("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})])
    result = collect_stream(
        gw, rid, model="llama", messages=[{"role": "user", "content": "weather and time?"}], tools=TOOLS
    )
    assert result.error is None
    calls = tool_calls_of(result.chunks)
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert [json.loads(c["arguments"]) for c in calls] == [{"city": "Paris"}, {"tz": "CET"}]
    assert len({c["id"] for c in calls}) == 2
    assert result.finish_reason == "tool_calls"
    assert mock.wait_for(rid).body_json["tools"] == TOOLS


def test_tool_round_trip_reaches_ollama_format(client: openai.OpenAI, mock: OllamaMock) -> None:
    rid = new_request_id()
    mock.script(rid, tool_calls=[("get_weather", {"city": "Oslo"})])
    resp = chat(client,
        model="llama", messages=[{"role": "user", "content": "weather?"}], tools=TOOLS,
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    calls = resp.choices[0].message.tool_calls
    assert calls is not None and resp.choices[0].finish_reason == "tool_calls"
    first = calls[0]
    assert first.type == "function"
    assert first.function.name == "get_weather" and json.loads(first.function.arguments) == {"city": "Oslo"}
    rid2 = new_request_id()
    chat(
        client,
        model="llama",
        messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None, "tool_calls": [c.model_dump() for c in calls]},
            {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"},
        ],
        tools=TOOLS,
        extra_headers={"x-request-id": rid2},
    )
    messages = mock.wait_for(rid2).body_json["messages"]
    assert messages[1] == {
        "role": "assistant", "content": "",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
    }  # fmt: skip
    assert messages[2] == {"role": "tool", "content": "sunny", "tool_name": "get_weather"}


def test_image_reaches_ollama_as_base64(client: openai.OpenAI, mock: OllamaMock) -> None:
    rid = new_request_id()
    chat(client,
        model="llama",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ]}],
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    assert mock.wait_for(rid).body_json["messages"] == [
        {"role": "user", "content": "what is this", "images": [PNG]}
    ]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]},
         "messages[0].content[0].image_url"),
        ({"tool_choice": "required", "tools": TOOLS}, "tool_choice"),
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
    ],
)  # fmt: skip
def test_untranslatable_fields_are_400(client: openai.OpenAI, extra: dict[str, object], param: str) -> None:
    body: dict[str, object] = {"model": "llama", "messages": [{"role": "user", "content": "x"}], **extra}
    with pytest.raises(openai.BadRequestError) as info:
        chat(client, **body)
    assert error_body(info.value)["param"] == param


def test_completions_endpoint_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="llama", prompt="x")
    assert "completions" in info.value.message


@pytest.mark.parametrize(
    ("status", "error_cls"), [(404, openai.NotFoundError), (500, openai.InternalServerError)]
)
def test_upstream_errors_map(client: openai.OpenAI, mock: OllamaMock, status: int, error_cls: type) -> None:
    rid = new_request_id()
    mock.script(rid, status=status, error={"error": "model 'llama3.2:3b' not found"})
    with pytest.raises(openai.APIStatusError) as info:
        chat(
            client,
            model="llama",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-request-id": rid},
        )
    assert isinstance(info.value, error_cls)
    assert info.value.status_code == status
    assert error_body(info.value)["message"] == "model 'llama3.2:3b' not found"
    assert error_body(info.value)["type"] == ("not_found_error" if status == 404 else "api_error")


@pytest.mark.parametrize(
    ("script", "needle"),
    [
        ({"corrupt": "bad_json"}, "not a JSON object"),
        ({"corrupt": "no_done"}, "final"),
        ({"corrupt": "error_line"}, "error was encountered"),
        ({"cut_after": 2}, "closed the connection"),
        ({"corrupt": "html", "content_type": "text/html"}, "not a JSON object"),
    ],
)
def test_malformed_streams_end_with_error(
    gw: Gateway, mock: OllamaMock, script: dict[str, object], needle: str
) -> None:
    rid = new_request_id()
    mock.script(rid, **script)
    result = collect_stream(gw, rid, model="llama", messages=[{"role": "user", "content": "one two three"}])
    assert result.error is not None, "the stream ended without an error"
    assert needle in str(result.error.message)
    assert result.elapsed < 5
