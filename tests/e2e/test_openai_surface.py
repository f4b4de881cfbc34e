"""The rest of OpenAI's surface through gatecore, passed through to an OpenAI-compatible upstream with
the official `openai` SDK (moderations, speech, transcriptions, images) and raw HTTP (rerank): what
reaches the upstream (the model renamed, the body otherwise as sent), binary answers relayed, the
access log, providers that cannot serve an endpoint, and bad input."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .conftest import make_client, new_request_id
from .gateway import ALL_KEY, FAST, MASTER_KEY, Gateway, GatewayFactory, running_gateway, write_config
from .prometheus_text import parse
from .raw_http import request as raw_request

AUDIO = b"RIFF\x00\x01\x02\x03WAVEfmt \xff\xfe binary audio"


@pytest.fixture(scope="module")
def surface(
    upstream: MockUpstream, refused: RefusedPort, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    def model(name: str, provider: str, upstream_model: str) -> dict[str, object]:
        return {
            "name": name,
            "deployments": [{"provider": provider, "model": upstream_model}],
            "timeouts": dict(FAST),
        }

    config = {
        "server": {"max_body_bytes": 1024 * 1024, "access_log": True},
        "providers": [
            {"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up"},
            {"name": "claude", "kind": "anthropic", "base_url": refused.base_url, "api_key": "sk-a"},
            {"name": "echo", "kind": "echo"},
        ],
        "models": [
            model("rerank-test", "up", "rerank-upstream"),
            model("omni-moderation-latest", "up", "moderation-upstream"),
            model("tts-test", "up", "tts-upstream"),
            model("whisper-test", "up", "whisper-upstream"),
            model("image-test", "up", "image-upstream"),
            model("compact-test", "up", "compact-upstream"),
            model("claude-test", "claude", "claude-upstream"),
            model("echo-test", "echo", "echo"),
        ],
        "auth": {"master_key": MASTER_KEY},
    }
    workdir = tmp_path_factory.mktemp("surface")
    path = write_config(config, workdir / "gatecore.yaml")
    with running_gateway(["--config", str(path)], workdir, config=config) as gw:
        yield gw


@pytest.fixture
def client(surface: Gateway) -> Iterator[openai.OpenAI]:
    with make_client(surface) as c:
        yield c


def tagged() -> tuple[str, dict[str, str]]:
    rid = new_request_id()
    return rid, {"x-request-id": rid}


def post(gw: Gateway, path: str, body: object, headers: dict[str, str] | None = None) -> tuple[int, object]:
    sent = {"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json", **(headers or {})}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = raw_request(gw.port, "POST", path, data, {k: v for k, v in sent.items() if v})
    try:
        return response.status, response.json()
    except ValueError:
        return response.status, response.body


def test_moderations(client: openai.OpenAI, upstream: MockUpstream, surface: Gateway) -> None:
    rid, headers = tagged()
    result = client.moderations.create(input=["a calm day", "an attack"], extra_headers=headers)
    assert [r.flagged for r in result.results] == [False, True]
    assert result.results[1].categories.violence is True
    sent = upstream.wait_for(rid)
    assert sent.path == "/v1/moderations"
    # No model given: routed by OpenAI's default name, renamed to the deployment's model.
    assert sent.body_json == {"input": ["a calm day", "an attack"], "model": "moderation-upstream"}
    entry = surface.wait_access_log(rid)
    assert (entry["endpoint"], entry["status"], entry["model"]) == (
        "moderations",
        200,
        "omni-moderation-latest",
    )


def test_speech_relays_the_audio_bytes(client: openai.OpenAI, upstream: MockUpstream) -> None:
    rid, headers = tagged()
    speech = client.audio.speech.create(
        model="tts-test", voice="alloy", input="héllo there", extra_headers=headers
    )
    assert speech.content == b"ID3MOCK" + "héllo there".encode()
    assert speech.response.headers["content-type"] == "audio/mpeg"
    sent = upstream.wait_for(rid)
    assert sent.path == "/v1/audio/speech"
    assert sent.body_json == {"input": "héllo there", "model": "tts-upstream", "voice": "alloy"}
    wav = client.audio.speech.create(model="tts-test", voice="alloy", input="x", response_format="wav")
    assert wav.response.headers["content-type"] == "audio/wav"


def test_transcription_multipart(client: openai.OpenAI, upstream: MockUpstream, surface: Gateway) -> None:
    rid, headers = tagged()
    text = client.audio.transcriptions.create(
        model="whisper-test", file=("clip.wav", AUDIO, "audio/wav"), language="en", extra_headers=headers
    )
    assert text.text.startswith(f"heard {len(AUDIO)} bytes: RIFF")
    sent = upstream.wait_for(rid)
    assert sent.path == "/v1/audio/transcriptions"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    # The model field renamed, the file's bytes and the other fields exactly as the client sent them.
    assert b'name="model"\r\n\r\nwhisper-upstream\r\n' in sent.body
    assert AUDIO in sent.body
    assert b'name="language"\r\n\r\nen\r\n' in sent.body
    entry = surface.wait_access_log(rid)
    assert (entry["endpoint"], entry["status"], entry["model"]) == (
        "audio_transcriptions",
        200,
        "whisper-test",
    )
    usage = sent.response_json["usage"]  # the answer's input_tokens / output_tokens are accounted
    assert (entry["input_tokens"], entry["output_tokens"], entry["usage_source"]) == (
        usage["input_tokens"],
        usage["output_tokens"],
        "upstream",
    )
    plain = client.audio.transcriptions.create(
        model="whisper-test", file=("clip.wav", AUDIO, "audio/wav"), response_format="text"
    )
    assert str(plain).startswith("heard")


def test_images(client: openai.OpenAI, upstream: MockUpstream, surface: Gateway) -> None:
    rid, headers = tagged()
    images = client.images.generate(model="image-test", prompt="a red cat", n=2, extra_headers=headers)
    assert images.data is not None and len(images.data) == 2
    assert images.data[0].revised_prompt == "a red cat"
    sent = upstream.wait_for(rid)
    assert sent.path == "/v1/images/generations"
    assert sent.body_json == {"model": "image-upstream", "prompt": "a red cat", "n": 2}
    entry = surface.wait_access_log(rid)
    assert (entry["input_tokens"], entry["output_tokens"]) == (10, 200)  # the answer's usage


def test_rerank(surface: Gateway, upstream: MockUpstream) -> None:
    rid, headers = tagged()
    body = {
        "model": "rerank-test",
        "query": "red cat",
        "documents": ["a blue dog", "a red cat", {"text": "one cat"}],
        "top_n": 2,
        "return_documents": True,
    }
    status, answer = post(surface, "/v1/rerank", body, headers)
    assert status == 200, answer
    assert isinstance(answer, dict)
    assert [r["index"] for r in answer["results"]] == [1, 2]
    assert answer["results"][0]["document"] == {"text": "a red cat"}
    sent = upstream.wait_for(rid)
    assert sent.path == "/v1/rerank"
    assert sent.body_json == {**body, "model": "rerank-upstream"}
    entry = surface.wait_access_log(rid)
    assert (entry["endpoint"], entry["status"]) == ("rerank", 200)
    # Rerank servers report only total_tokens, the tokens they read.
    assert entry["input_tokens"] == sent.response_json["usage"]["total_tokens"] > 0
    assert entry["output_tokens"] == 0


def test_upstream_error_is_relayed(surface: Gateway) -> None:
    status, answer = post(
        surface,
        "/v1/rerank",
        {"model": "rerank-test", "query": "q", "documents": ["d"], "mock": {"status": 422}},
    )
    assert status == 422
    assert isinstance(answer, dict) and answer["error"]["message"] == "mock error 422"


@pytest.mark.parametrize("model", ["claude-test", "echo-test"])
@pytest.mark.parametrize(
    ("path", "body", "endpoint"),
    [
        ("/v1/rerank", {"query": "q", "documents": ["d"]}, "rerank"),
        ("/v1/moderations", {"input": "x"}, "moderations"),
        ("/v1/audio/speech", {"input": "x", "voice": "alloy"}, "audio_speech"),
        ("/v1/images/generations", {"prompt": "x"}, "images"),
    ],
)
def test_provider_that_cannot_serve_names_the_endpoint(
    surface: Gateway, model: str, path: str, body: dict[str, object], endpoint: str
) -> None:
    status, answer = post(surface, path, {**body, "model": model})
    assert status == 400, answer
    assert isinstance(answer, dict)
    assert endpoint in answer["error"]["message"]
    assert answer["error"]["code"] == "unsupported_endpoint"


def test_transcription_on_a_provider_that_cannot(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.transcriptions.create(model="claude-test", file=("a.wav", AUDIO, "audio/wav"))
    assert "audio_transcriptions" in str(raised.value)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/rerank", {"model": "rerank-test", "query": "q", "documents": []}, "documents"),
        ("/v1/rerank", {"model": "rerank-test", "query": "q", "documents": ["d"], "top_n": 0}, "top_n"),
        ("/v1/rerank", {"model": "rerank-test", "documents": ["d"]}, "query"),
        ("/v1/rerank", {"model": "rerank-test", "query": "q", "documents": ["d"] * 10_001}, "documents"),
        ("/v1/audio/speech", {"model": "tts-test", "voice": "alloy", "input": "x" * 4097}, "input"),
        ("/v1/audio/speech", {"model": "tts-test", "input": "x"}, "voice"),
        ("/v1/images/generations", {"model": "image-test", "prompt": "x", "n": 11}, "n"),
        ("/v1/moderations", {"model": "m" * 300, "input": "x"}, "model"),
        ("/v1/moderations", {"model": "omni-moderation-latest"}, "input"),
    ],
)
def test_bad_input(
    surface: Gateway, upstream: MockUpstream, path: str, body: dict[str, object], param: str
) -> None:
    before = len(upstream.requests)
    status, answer = post(surface, path, body)
    assert status == 400, answer
    assert isinstance(answer, dict) and answer["error"]["param"] == param
    assert len(upstream.requests) == before


def multipart(fields: list[tuple[str, bytes]], boundary: str = "b0undary") -> bytes:
    out = b""
    for name, value in fields:
        out += (
            f'--{boundary}\r\ncontent-disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value
            + b"\r\n"
        )
    return out + f"--{boundary}--\r\n".encode()


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/json", b'{"model": "whisper-test"}', 400),
        ("multipart/form-data", multipart([("model", b"whisper-test")]), 400),  # no boundary
        ("multipart/form-data; boundary=b0undary", multipart([("file", AUDIO)]), 400),  # no model
        ("multipart/form-data; boundary=b0undary", multipart([("model", b"w" * 300), ("file", AUDIO)]), 400),
        ("multipart/form-data; boundary=b0undary", multipart([("model", b"\xff\xfe"), ("file", AUDIO)]), 400),
        (
            "multipart/form-data; boundary=b0undary",
            b'--b0undary\r\ncontent-disposition: form-data; name="model"',
            400,
        ),
        ("multipart/form-data; boundary=b0undary", multipart([("model", b"nope"), ("file", AUDIO)]), 404),
        ("multipart/form-data; boundary=" + "x" * 71, multipart([("model", b"whisper-test")], "x" * 71), 400),
    ],
    ids=[
        "json",
        "no-boundary",
        "no-model",
        "long-model",
        "binary-model",
        "truncated",
        "unknown-model",
        "long-boundary",
    ],
)
def test_bad_transcription_forms(surface: Gateway, content_type: str, body: bytes, status: int) -> None:
    got, answer = post(surface, "/v1/audio/transcriptions", body, {"content-type": content_type})
    assert got == status, answer
    assert isinstance(answer, dict) and "error" in answer


def test_no_key_is_401_before_the_body(surface: Gateway) -> None:
    got, _ = post(
        surface, "/v1/audio/transcriptions", multipart([("model", b"whisper-test")]), {"authorization": ""}
    )
    assert got == 401


def test_rpm_limit_and_metrics(gateway_factory: GatewayFactory, upstream: MockUpstream) -> None:
    config = {
        "server": {"access_log": True},
        "providers": [{"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up"}],
        "models": [
            {
                "name": "rerank-test",
                "deployments": [{"provider": "up", "model": "r"}],
                "timeouts": dict(FAST),
            },
            {"name": "tts-test", "deployments": [{"provider": "up", "model": "t"}], "timeouts": dict(FAST)},
        ],
        "auth": {"master_key": MASTER_KEY, "keys": [{"key": ALL_KEY, "name": "one-rpm", "rpm": 1}]},
    }
    gw = gateway_factory(config)
    limited = {"authorization": f"Bearer {ALL_KEY}"}
    rerank = {"model": "rerank-test", "query": "q", "documents": ["q"]}
    assert post(gw, "/v1/rerank", rerank, limited)[0] == 200
    status, answer = post(gw, "/v1/rerank", rerank, limited)
    assert status == 429 and isinstance(answer, dict) and answer["error"]["code"] == "rate_limit_exceeded"
    assert (
        post(gw, "/v1/audio/speech", {"model": "tts-test", "input": "x", "voice": "alloy"}, limited)[0] == 429
    )
    assert post(gw, "/v1/audio/speech", {"model": "tts-test", "input": "x", "voice": "alloy"})[0] == 200
    deadline = time.monotonic() + 10
    while True:
        metrics = parse(raw_request(gw.port, "GET", "/metrics").body.decode())
        done = metrics.total("gatecore_requests_total") >= 4
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    requests = "gatecore_requests_total"
    assert (
        metrics.value(requests, model="rerank-test", deployment="up/r", endpoint="rerank", status_class="2xx")
        == 1
    )
    assert (
        metrics.value(
            requests, model="tts-test", deployment="up/t", endpoint="audio_speech", status_class="2xx"
        )
        == 1
    )
    assert metrics.value("gatecore_rejections_total", model="rerank-test", reason="rate_limit") == 1


def test_responses_compact_passes_through(
    client: openai.OpenAI, upstream: MockUpstream, surface: Gateway
) -> None:
    """`POST /v1/responses/compact` (Codex's and the Agents SDK's compaction) on an upstream that has it:
    the client's body with the model renamed, the compacted items back, the usage in the access log."""
    rid, headers = tagged()
    history = [
        {"role": "user", "content": "list the files"},
        {"role": "assistant", "content": "a.txt b.txt"},
        {"role": "user", "content": "now read a.txt"},
    ]
    compacted = client.responses.compact(
        model="compact-test",
        input=history,  # type: ignore[arg-type]
        instructions="be brief",
        extra_headers=headers,
    )
    assert compacted.object == "response.compaction"
    assert [item.type for item in compacted.output] == ["message", "message", "compaction"]
    assert compacted.usage.total_tokens == 52
    sent = upstream.wait_for(rid)
    assert sent.path == "/v1/responses/compact"
    assert sent.body_json == {"input": history, "instructions": "be brief", "model": "compact-upstream"}
    entry = surface.wait_access_log(rid)
    assert (entry["endpoint"], entry["status"], entry["model"]) == ("responses_compact", 200, "compact-test")
    # gatecore's own response ids mean nothing upstream: refused, naming the field.
    status, body = post(
        surface, "/v1/responses/compact", {"model": "compact-test", "previous_response_id": "resp_1"}
    )
    assert status == 400 and isinstance(body, dict)
    assert body["error"]["param"] == "previous_response_id"
    # A provider without the endpoint says so.
    status, body = post(surface, "/v1/responses/compact", {"model": "claude-test", "input": "hi"})
    assert status == 400 and isinstance(body, dict)
    assert body["error"]["code"] == "unsupported_endpoint" and "responses_compact" in body["error"]["message"]
