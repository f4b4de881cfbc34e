"""Chat completions through gatecore with the openai SDK, sync and async, streamed and not."""

from __future__ import annotations

import asyncio

import openai
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from ..upstreams.openai_mock import MockUpstream
from .conftest import make_async_client, new_request_id
from .gateway import Gateway


def user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def test_non_stream(client: openai.OpenAI, upstream: MockUpstream) -> None:
    rid = new_request_id()
    resp = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "system", "content": "be brief"}, *user("hello there")],
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    assert resp.object == "chat.completion"
    assert resp.id.startswith("chatcmpl-")
    assert resp.model == "gpt-test"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == "mock: hello there"
    assert resp.choices[0].finish_reason == "stop"
    sent = upstream.wait_for(rid)
    assert sent.method == "POST"
    assert sent.path == "/v1/chat/completions"
    assert sent.body_json["model"] == "upstream-model-1"
    assert resp.usage is not None
    sent_usage = sent.response_json["usage"]
    assert resp.usage.prompt_tokens == sent_usage["prompt_tokens"]
    assert resp.usage.completion_tokens == sent_usage["completion_tokens"]
    assert resp.usage.total_tokens == sent_usage["total_tokens"]


def test_stream(client: openai.OpenAI, upstream: MockUpstream) -> None:
    rid = new_request_id()
    stream = client.chat.completions.create(
        model="gpt-test", messages=user("stream me please"), stream=True, extra_headers={"x-request-id": rid}
    )
    with stream:
        chunks = list(stream)
    assert chunks, "no chunks"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert {c.model for c in chunks} == {"gpt-test"}
    assert all(c.choices for c in chunks), "the client did not ask for usage: no usage-only chunk"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "mock: stream me please"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert upstream.wait_for(rid).body_json["model"] == "upstream-model-1"


def test_stream_include_usage(client: openai.OpenAI, upstream: MockUpstream) -> None:
    rid = new_request_id()
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=user("count my tokens"),
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-request-id": rid},
    )
    with stream:
        chunks = list(stream)
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == 1
    assert usage_chunks[0] is chunks[-1]
    assert usage_chunks[0].model == "gpt-test"
    assert usage_chunks[0].usage is not None
    sent_usage = upstream.wait_for(rid).event_objects()[-1]["usage"]
    assert usage_chunks[0].usage.total_tokens == sent_usage["total_tokens"]
    assert usage_chunks[0].usage.prompt_tokens == sent_usage["prompt_tokens"]
    assert usage_chunks[0].usage.completion_tokens == sent_usage["completion_tokens"]
    assert all(c.usage is None for c in chunks[:-1])


def test_model_mapping_per_model(client: openai.OpenAI, upstream: MockUpstream) -> None:
    rid = new_request_id()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-other", messages=user("which model"), extra_headers={"x-request-id": rid}
    )
    assert raw.parse().model == "gpt-other"
    assert raw.headers["x-gatecore-model"] == "up/upstream-model-2"
    assert upstream.wait_for(rid).body_json["model"] == "upstream-model-2"


def test_response_headers(client: openai.OpenAI, upstream: MockUpstream) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=user("headers"))
    assert raw.status_code == 200
    request_id = raw.headers.get("x-request-id")
    assert request_id, "x-request-id is generated when the client sent none"
    assert raw.headers["x-gatecore-model"] == "up/upstream-model-1"
    overhead = float(raw.headers["x-gatecore-overhead-ms"])
    assert overhead >= 0
    assert raw.parse().choices[0].message.content == "mock: headers"
    assert upstream.wait_for(request_id).request_id == request_id


def test_client_request_id_is_kept(client: openai.OpenAI) -> None:
    rid = new_request_id()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=user("rid"), extra_headers={"x-request-id": rid}
    )
    assert raw.headers["x-request-id"] == rid


def test_generated_request_ids_are_unique(client: openai.OpenAI) -> None:
    ids = {
        client.chat.completions.with_raw_response.create(model="gpt-test", messages=user("u")).headers[
            "x-request-id"
        ]
        for _ in range(5)
    }
    assert len(ids) == 5


def test_stream_response_headers(client: openai.OpenAI) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="gpt-test", messages=user("hdrs"), stream=True
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-gatecore-model"] == "up/upstream-model-1"
        assert response.headers.get("x-request-id")
        float(response.headers["x-gatecore-overhead-ms"])
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text == "mock: hdrs"


def test_content_parts_message(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": [{"type": "text", "text": "part one"}]}],
    )
    assert resp.choices[0].message.content == "mock: part one"


def test_async_non_stream_and_stream(gateway: Gateway, upstream: MockUpstream) -> None:
    async def main() -> tuple[str, str, list[ChatCompletionChunk]]:
        async with make_async_client(gateway) as aclient:
            resp = await aclient.chat.completions.create(model="gpt-test", messages=user("async hello"))
            stream = await aclient.chat.completions.create(
                model="gpt-test", messages=user("async stream"), stream=True
            )
            chunks = [c async for c in stream]
            await stream.close()
            return resp.model, resp.choices[0].message.content or "", chunks

    model, content, chunks = asyncio.run(main())
    assert model == "gpt-test"
    assert content == "mock: async hello"
    assert {c.model for c in chunks} == {"gpt-test"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "mock: async stream"
    assert all(c.choices for c in chunks)


def test_async_concurrent_requests_do_not_mix(gateway: Gateway) -> None:
    async def one(aclient: openai.AsyncOpenAI, i: int) -> tuple[int, str]:
        if i % 2:
            stream = await aclient.chat.completions.create(
                model="gpt-test", messages=user(f"request {i}"), stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            await stream.close()
            return i, text
        resp = await aclient.chat.completions.create(model="gpt-test", messages=user(f"request {i}"))
        return i, resp.choices[0].message.content or ""

    async def main() -> list[tuple[int, str]]:
        async with make_async_client(gateway) as aclient:
            return await asyncio.wait_for(asyncio.gather(*(one(aclient, i) for i in range(40))), 40)

    for i, text in asyncio.run(main()):
        assert text == f"mock: request {i}"
