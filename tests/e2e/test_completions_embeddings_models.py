"""Legacy completions, embeddings and the model list through gatecore."""

from __future__ import annotations

import base64
import struct

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream, expected_embedding
from . import raw_http
from .conftest import make_client, new_request_id
from .gateway import ALL_KEY, MASTER_KEY, STANDARD_MODELS, TEAM_KEY, TEAM_MODELS, Gateway

# -- completions ---------------------------------------------------------------------------------------


def test_completion_non_stream(client: openai.OpenAI, upstream: MockUpstream) -> None:
    rid = new_request_id()
    raw = client.completions.with_raw_response.create(
        model="gpt-test", prompt="once upon a time", max_tokens=5, extra_headers={"x-request-id": rid}
    )
    resp = raw.parse()
    assert resp.object == "text_completion"
    assert resp.model == "gpt-test"
    assert resp.choices[0].text == "mock: once upon a time"
    assert resp.choices[0].finish_reason == "stop"
    assert raw.headers["x-gatecore-model"] == "up/upstream-model-1"
    sent = upstream.wait_for(rid)
    assert sent.path == "/v1/completions"
    assert sent.body_json["model"] == "upstream-model-1"
    assert sent.body_json["max_tokens"] == 5
    assert resp.usage is not None
    assert resp.usage.total_tokens == sent.response_json["usage"]["total_tokens"]


def test_completion_stream(client: openai.OpenAI, upstream: MockUpstream) -> None:
    rid = new_request_id()
    stream = client.completions.create(
        model="gpt-test", prompt="stream a completion", stream=True, extra_headers={"x-request-id": rid}
    )
    with stream:
        chunks = list(stream)
    assert chunks
    assert {c.model for c in chunks} == {"gpt-test"}
    assert {c.object for c in chunks} == {"text_completion"}
    assert all(c.choices for c in chunks), "no usage-only chunk when the client did not ask for it"
    assert "".join(c.choices[0].text for c in chunks) == "mock: stream a completion"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert upstream.wait_for(rid).body_json["model"] == "upstream-model-1"


def test_completion_stream_include_usage(client: openai.OpenAI, upstream: MockUpstream) -> None:
    rid = new_request_id()
    stream = client.completions.create(
        model="gpt-test",
        prompt="usage please",
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-request-id": rid},
    )
    with stream:
        chunks = list(stream)
    assert not chunks[-1].choices
    assert chunks[-1].usage is not None
    assert chunks[-1].model == "gpt-test"
    sent_usage = upstream.wait_for(rid).event_objects()[-1]["usage"]
    assert chunks[-1].usage.total_tokens == sent_usage["total_tokens"]
    assert sum(1 for c in chunks if not c.choices) == 1


# -- embeddings ----------------------------------------------------------------------------------------


def test_embeddings_float(client: openai.OpenAI, upstream: MockUpstream) -> None:
    rid = new_request_id()
    raw = client.embeddings.with_raw_response.create(
        model="embed-test", input="embed this", encoding_format="float", extra_headers={"x-request-id": rid}
    )
    resp = raw.parse()
    assert resp.object == "list"
    assert resp.model == "embed-test"
    assert len(resp.data) == 1
    assert resp.data[0].object == "embedding"
    assert resp.data[0].index == 0
    assert resp.data[0].embedding == expected_embedding("embed this")
    assert resp.usage.prompt_tokens == resp.usage.total_tokens == 2
    assert raw.headers["x-gatecore-model"] == "up/text-embedding-mock"
    sent = upstream.wait_for(rid)
    assert sent.path == "/v1/embeddings"
    assert sent.body_json == {
        "model": "text-embedding-mock",
        "input": "embed this",
        "encoding_format": "float",
    }


def test_embeddings_list_sdk_default_base64(client: openai.OpenAI, upstream: MockUpstream) -> None:
    """The SDK asks for base64 by default and decodes it: the gateway must pass the strings through."""
    rid = new_request_id()
    texts = ["first input", "second", "the third input here"]
    resp = client.embeddings.create(model="embed-test", input=texts, extra_headers={"x-request-id": rid})
    assert [d.index for d in resp.data] == [0, 1, 2]
    for d, text in zip(resp.data, texts, strict=True):
        assert d.embedding == expected_embedding(text)
    sent = upstream.wait_for(rid)
    assert sent.body_json["encoding_format"] == "base64"
    assert sent.body_json["input"] == texts
    assert resp.usage.prompt_tokens == 2 + 1 + 4  # the mock counts words


def test_embeddings_base64_raw(gateway: Gateway) -> None:
    body = {"model": "embed-test", "input": "raw b64", "encoding_format": "base64", "dimensions": 4}
    resp = raw_http.post_json(gateway.port, "/v1/embeddings", body, MASTER_KEY)
    assert resp.status == 200, resp.body
    obj = resp.json()
    assert obj["object"] == "list"
    assert obj["model"] == "embed-test"
    decoded = list(struct.unpack("<4f", base64.b64decode(obj["data"][0]["embedding"])))
    assert decoded == expected_embedding("raw b64", 4)
    assert set(obj["usage"]) == {"prompt_tokens", "total_tokens"}


# -- models --------------------------------------------------------------------------------------------


def test_models_master_key_sees_all(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert set(ids) == STANDARD_MODELS
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(("key", "expected"), [(TEAM_KEY, TEAM_MODELS), (ALL_KEY, STANDARD_MODELS)])
def test_models_per_key(gateway: Gateway, key: str, expected: frozenset[str]) -> None:
    with make_client(gateway, key) as c:
        assert {m.id for m in c.models.list()} == expected


def test_models_wire_shape(gateway: Gateway) -> None:
    resp = raw_http.request(
        gateway.port, "GET", "/v1/models", headers={"Authorization": f"Bearer {TEAM_KEY}"}
    )
    assert resp.status == 200
    assert (resp.header("content-type") or "").startswith("application/json")
    obj = resp.json()
    assert obj["object"] == "list"
    assert isinstance(obj["data"], list)
    for entry in obj["data"]:
        assert entry["object"] == "model"
        assert isinstance(entry["id"], str)
        assert isinstance(entry.get("created", 0), int)
        assert isinstance(entry.get("owned_by", ""), str)


def test_models_needs_a_key(gateway: Gateway) -> None:
    resp = raw_http.request(gateway.port, "GET", "/v1/models")
    assert resp.status == 401
    assert resp.json()["error"]["code"] == "missing_api_key"
