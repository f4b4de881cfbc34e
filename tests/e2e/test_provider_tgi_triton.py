"""The prompt-only engines, `tgi` (native /generate) and `triton` (generate extension), end to end:
chat rendered through the configured template, /v1/completions natively, streams, errors."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from ..upstreams.tgi_mock import TgiMock
from ..upstreams.triton_mock import TritonMock
from .conftest import make_client
from .gateway import Gateway
from .provider_harness import chat, collect_stream, error_body, gateway_for, new_request_id

USER = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]
CHATML = (
    "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\n"
)
LLAMA3 = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nbe brief<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nhello there<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)


@pytest.fixture(scope="module")
def tgi() -> Iterator[TgiMock]:
    with TgiMock() as m:
        yield m


@pytest.fixture(scope="module")
def triton() -> Iterator[TritonMock]:
    with TritonMock() as m:
        yield m


@pytest.fixture(scope="module")
def gw(tgi: TgiMock, triton: TritonMock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    provider = {"name": "tgi", "kind": "tgi", "base_url": tgi.base_url}
    others = [
        {"name": "tgi-llama", "kind": "tgi", "base_url": tgi.base_url, "chat_template": "llama3"},
        {"name": "triton", "kind": "triton", "base_url": triton.base_url},
    ]
    models = [
        {"name": "llama3", "deployments": [{"provider": "tgi-llama", "model": "tgi"}]},
        {"name": "trt", "deployments": [{"provider": "triton", "model": "ensemble"}]},
    ]
    with gateway_for(
        tmp_path_factory, provider, {"qwen": "tgi"}, extra_providers=others, extra_models=models
    ) as g:
        yield g


@pytest.fixture
def client(gw: Gateway) -> Iterator[openai.OpenAI]:
    with make_client(gw) as c:
        yield c


def test_tgi_chat_rendered_with_chatml(client: openai.OpenAI, tgi: TgiMock) -> None:
    rid = new_request_id()
    resp = chat(client, model="qwen", messages=USER, max_tokens=20, temperature=0.5, top_p=0.9, stop=["<|im_end|>"],
                seed=4, extra_headers={"x-request-id": rid})  # fmt: skip
    assert resp.choices[0].message.content == "mock: <|im_start|>assistant"
    assert resp.choices[0].finish_reason == "stop"
    sent = tgi.wait_for(rid)
    assert sent.path == "/generate"
    assert sent.body_json == {
        "inputs": CHATML,
        "parameters": {"temperature": 0.5, "top_p": 0.9, "seed": 4, "details": True, "max_new_tokens": 20,
                       "stop": ["<|im_end|>"]},
    }  # fmt: skip
    assert (
        resp.usage is not None
        and resp.usage.completion_tokens == sent.response_json["details"]["generated_tokens"]
    )


def test_tgi_llama3_template_and_stream(gw: Gateway, tgi: TgiMock) -> None:
    rid = new_request_id()
    result = collect_stream(gw, rid, model="llama3", messages=USER, stream_options={"include_usage": True})
    assert result.error is None
    assert tgi.wait_for(rid).body_json["inputs"] == LLAMA3
    assert result.text == "mock: " + LLAMA3.strip().splitlines()[-1][:40]
    assert result.finish_reason == "stop"
    usage = result.chunks[-1].usage
    assert usage is not None and usage.prompt_tokens == 11  # details.input_length


def test_tgi_length_and_json_grammar(client: openai.OpenAI, tgi: TgiMock) -> None:
    rid = new_request_id()
    tgi.script(rid, finish="length")
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    resp = chat(client, model="qwen", messages=USER, extra_headers={"x-request-id": rid},
                response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}})  # fmt: skip
    assert resp.choices[0].finish_reason == "length"
    assert tgi.wait_for(rid).body_json["parameters"]["grammar"] == {"type": "json", "value": schema}


def test_tgi_completions_native(client: openai.OpenAI, tgi: TgiMock) -> None:
    rid = new_request_id()
    resp = client.completions.create(
        model="qwen", prompt="Once upon", max_tokens=5, extra_headers={"x-request-id": rid}
    )
    assert resp.object == "text_completion" and resp.choices[0].text == "mock: Once upon"
    assert tgi.wait_for(rid).body_json["inputs"] == "Once upon"


def test_tgi_streamed_completions(client: openai.OpenAI) -> None:
    stream = client.completions.create(model="qwen", prompt="Once upon", stream=True)
    with stream:
        chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "mock: Once upon"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
     ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}]},
      "messages[0].content[0]"),
     ({"n": 2}, "n")],
)  # fmt: skip
@pytest.mark.parametrize("model", ["qwen", "trt"])
def test_untranslatable_fields_are_400(
    client: openai.OpenAI, model: str, extra: dict[str, object], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat(client, **{"model": model, "messages": USER, **extra})
    assert error_body(info.value)["param"] == param


def test_tgi_errors_map(client: openai.OpenAI, tgi: TgiMock) -> None:
    for status, type_ in (
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (424, "invalid_request_error"),
    ):
        rid = new_request_id()
        tgi.script(rid, status=status, error="Input validation error: too long")
        with pytest.raises(openai.APIStatusError) as info:
            chat(client, model="qwen", messages=USER, extra_headers={"x-request-id": rid})
        assert info.value.status_code == status
        assert error_body(info.value)["message"] == "Input validation error: too long"
        assert error_body(info.value)["type"] == type_


def test_triton_chat_and_stream(client: openai.OpenAI, gw: Gateway, triton: TritonMock) -> None:
    rid = new_request_id()
    resp = chat(client, model="trt", messages=USER, max_tokens=9, temperature=0.1, stop=["END"],
                extra_headers={"x-request-id": rid})  # fmt: skip
    assert resp.choices[0].message.content == "mock: <|im_start|>assistant"
    sent = triton.wait_for(rid)
    assert sent.path == "/v2/models/ensemble/generate"
    assert sent.body_json == {"text_input": CHATML, "stream": False, "max_tokens": 9, "stop_words": ["END"],
                              "parameters": {"temperature": 0.1}}  # fmt: skip
    assert resp.usage is not None and resp.usage.completion_tokens > 0
    rid = new_request_id()
    result = collect_stream(gw, rid, model="trt", messages=USER)
    assert result.error is None and result.text == "mock: <|im_start|>assistant"
    assert result.finish_reason == "stop"
    sent = triton.wait_for(rid)
    assert sent.path == "/v2/models/ensemble/generate_stream" and sent.body_json["stream"] is True


def test_triton_errors_map(client: openai.OpenAI, triton: TritonMock) -> None:
    rid = new_request_id()
    triton.script(rid, status=400, error="unexpected inference input 'foo'")
    with pytest.raises(openai.BadRequestError) as info:
        chat(client, model="trt", messages=USER, extra_headers={"x-request-id": rid})
    assert error_body(info.value)["message"] == "unexpected inference input 'foo'"


@pytest.mark.parametrize("model", ["qwen", "trt"])
@pytest.mark.parametrize(
    ("script", "needle"),
    [
        ({"corrupt": "bad_json"}, "not a JSON object"),
        ({"corrupt": "error_event"}, "mid-stream"),
        ({"corrupt": "truncated"}, "middle of an event"),
        ({"cut_after": 1}, "closed the connection"),
    ],
)
def test_malformed_streams_end_with_error(
    gw: Gateway, tgi: TgiMock, triton: TritonMock, model: str, script: dict[str, object], needle: str
) -> None:
    rid = new_request_id()
    (tgi if model == "qwen" else triton).script(rid, **script)
    result = collect_stream(gw, rid, model=model, messages=USER)
    assert result.error is not None, "the stream ended without an error"
    assert needle in str(result.error.message)
    assert result.elapsed < 5


def test_tgi_stream_without_final_event(gw: Gateway, tgi: TgiMock) -> None:
    rid = new_request_id()
    tgi.script(rid, corrupt="no_end")
    result = collect_stream(gw, rid, model="qwen", messages=USER)
    assert result.error is not None and "final event" in str(result.error.message)
