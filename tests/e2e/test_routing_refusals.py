"""Refusals another model may not give: an upstream's "context length exceeded" takes the request to
the model's `context_fallbacks`, a content-policy refusal (a 400, or a non-streamed answer cut by a
content filter) to its `content_policy_fallbacks`, in each provider's own wire format; the client (an
`openai` or `anthropic` SDK) sees only the answer that served it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from ..upstreams.anthropic_mock import API_KEY as ANTHROPIC_KEY
from ..upstreams.anthropic_mock import AnthropicMock
from ..upstreams.replica_mock import Replica
from .anthropic_client import make_anthropic
from .conftest import make_client
from .gateway import MASTER_KEY, Gateway, running_gateway, write_config

TIMEOUTS = {"connect": 2, "first_byte": 5, "idle": 5, "total": 10}
OPENAI_CONTEXT = {
    "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in "
    "9000 tokens. Please reduce the length of the messages.",
    "type": "invalid_request_error",
    "param": "messages",
    "code": "context_length_exceeded",
}
# vLLM: no OpenAI code, its own type, the same sentence.
VLLM_CONTEXT = {
    "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
    "(4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.",
    "type": "BadRequestError",
    "param": None,
    "code": 400,
}
AZURE_FILTER = {
    "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management "
    "policy. Please modify your prompt and retry.",
    "type": None,
    "param": "prompt",
    "code": "content_filter",
    "status": 400,
    "innererror": {
        "code": "ResponsibleAIPolicyViolation",
        "content_filter_result": {"violence": {"filtered": True, "severity": "medium"}},
    },
}
OPENAI_FLAGGED = {
    "message": "Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please "
    "try again with a different prompt.",
    "type": "invalid_request_error",
    "param": None,
    "code": "invalid_prompt",
}


def model(name: str, provider: str, upstream: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "timeouts": TIMEOUTS,
        "deployments": [{"provider": provider, "model": upstream}],
        **extra,
    }


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[Replica, Replica, AnthropicMock]]:
    with Replica() as primary, Replica() as secondary, AnthropicMock() as claude:
        yield primary, secondary, claude


@pytest.fixture(scope="module")
def gw(
    upstreams: tuple[Replica, Replica, AnthropicMock], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    primary, secondary, claude = upstreams
    cfg = {
        "providers": [
            {"name": "p", "kind": "openai", "base_url": primary.base_url, "api_key": "sk-up"},
            {"name": "s", "kind": "openai", "base_url": secondary.base_url, "api_key": "sk-up"},
            {"name": "claude", "kind": "anthropic", "base_url": claude.origin, "api_key": ANTHROPIC_KEY},
        ],
        "models": [
            model("short", "p", "short-model", context_fallbacks=["long"]),
            model("long", "s", "long-model"),
            model("guarded", "p", "guarded-model", content_policy_fallbacks=["lenient"]),
            model("lenient", "s", "lenient-model"),
            model("plain", "p", "plain-model"),
            model("loop-a", "p", "a-model", context_fallbacks=["loop-b"]),
            model("loop-b", "s", "b-model", context_fallbacks=["loop-a"]),
            model(
                "claude/*", "claude", "*", context_fallbacks=["long"], content_policy_fallbacks=["lenient"]
            ),
        ],
        "auth": {"master_key": MASTER_KEY},
    }
    workdir: Path = tmp_path_factory.mktemp("refusals")
    with running_gateway(["--config", str(write_config(cfg, workdir / "g.yaml"))], workdir, config=cfg) as g:
        yield g


@pytest.fixture(autouse=True)
def fresh(upstreams: tuple[Replica, Replica, AnthropicMock]) -> None:
    primary, secondary, claude = upstreams
    for replica in (primary, secondary):
        replica.clear()
        replica.steer = {}
    claude.clear()


def chat(gw: Gateway, model: str, **kwargs: Any) -> Any:
    with make_client(gw) as client:
        return client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hello there"}], **kwargs
        )


@pytest.mark.parametrize("error", [OPENAI_CONTEXT, VLLM_CONTEXT], ids=["openai", "vllm"])
def test_context_exceeded_goes_to_the_context_fallback(
    gw: Gateway, upstreams: tuple[Replica, Replica, AnthropicMock], error: dict[str, Any]
) -> None:
    primary, secondary, _ = upstreams
    primary.steer = {"status": 400, "error": error}
    raw = chat(gw, "short")
    completion = raw.parse()
    assert completion.choices[0].message.content == "mock: hello there"
    assert completion.model == "short"
    assert raw.headers["x-gatecore-model"] == "s/long-model"
    assert raw.headers["x-gatecore-attempts"] == "2"
    assert (primary.hits, secondary.hits) == (1, 1)
    assert secondary.requests[0].body_json["model"] == "long-model"


def test_streamed_request_redirected_before_its_stream_starts(
    gw: Gateway, upstreams: tuple[Replica, Replica, AnthropicMock]
) -> None:
    primary, secondary, _ = upstreams
    primary.steer = {"status": 400, "error": OPENAI_CONTEXT}
    with (
        make_client(gw) as client,
        client.chat.completions.with_streaming_response.create(
            model="short", messages=[{"role": "user", "content": "hello there"}], stream=True
        ) as response,
    ):
        assert response.headers["x-gatecore-model"] == "s/long-model"
        text = "".join(chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices)
    assert text == "mock: hello there"
    assert (primary.hits, secondary.hits) == (1, 1)


def test_anthropic_upstream_prompt_too_long(
    gw: Gateway, upstreams: tuple[Replica, Replica, AnthropicMock]
) -> None:
    _, secondary, claude = upstreams
    raw = chat(gw, "claude/claude-mock~toolong", max_tokens=50)
    assert raw.headers["x-gatecore-model"] == "s/long-model"
    assert raw.parse().choices[0].message.content == "mock: hello there"
    assert len(claude.requests) == 1 and secondary.hits == 1


@pytest.mark.parametrize(
    "error", [AZURE_FILTER, OPENAI_FLAGGED], ids=["azure-content-filter", "openai-flagged"]
)
def test_content_policy_refusal_goes_to_its_fallback(
    gw: Gateway, upstreams: tuple[Replica, Replica, AnthropicMock], error: dict[str, Any]
) -> None:
    primary, secondary, _ = upstreams
    primary.steer = {"status": 400, "error": error}
    raw = chat(gw, "guarded")
    assert raw.parse().choices[0].message.content == "mock: hello there"
    assert raw.headers["x-gatecore-model"] == "s/lenient-model"
    assert (primary.hits, secondary.hits) == (1, 1)


def test_filtered_answer_goes_to_the_fallback_unless_streamed(
    gw: Gateway, upstreams: tuple[Replica, Replica, AnthropicMock]
) -> None:
    primary, secondary, _ = upstreams
    primary.steer = {"finish_reason": "content_filter", "content": ""}
    raw = chat(gw, "guarded")
    choice = raw.parse().choices[0]
    assert (choice.finish_reason, choice.message.content) == ("stop", "mock: hello there")
    assert raw.headers["x-gatecore-model"] == "s/lenient-model"
    # A stream relays as it arrives: its filtered finish reaches the client as the upstream sent it.
    with make_client(gw) as client:
        chunks = list(
            client.chat.completions.create(
                model="guarded", messages=[{"role": "user", "content": "hello there"}], stream=True
            )
        )
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "content_filter"
    ]
    assert (primary.hits, secondary.hits) == (2, 1)


def test_anthropic_refusal_goes_to_the_fallback(
    gw: Gateway, upstreams: tuple[Replica, Replica, AnthropicMock]
) -> None:
    _, secondary, claude = upstreams
    raw = chat(gw, "claude/claude-mock~reason=refusal", max_tokens=50)
    assert raw.headers["x-gatecore-model"] == "s/lenient-model"
    assert raw.parse().choices[0].finish_reason == "stop"
    assert len(claude.requests) == 1 and secondary.hits == 1


def test_other_400s_and_models_without_fallbacks_relay_the_answer(
    gw: Gateway, upstreams: tuple[Replica, Replica, AnthropicMock]
) -> None:
    primary, secondary, _ = upstreams
    primary.steer = {
        "status": 400,
        "error": {"message": "temperature must be at most 2", "code": "invalid_value"},
    }
    with pytest.raises(openai.BadRequestError) as info:
        chat(gw, "guarded")
    assert info.value.code == "invalid_value"
    assert info.value.response.headers["x-gatecore-attempts"] == "1"
    primary.steer = {"status": 400, "error": OPENAI_CONTEXT}
    with pytest.raises(openai.BadRequestError) as info:
        chat(gw, "plain")
    assert info.value.code == "context_length_exceeded"
    assert "maximum context length is 8192" in info.value.message
    assert secondary.hits == 0


def test_fallbacks_refusing_in_turn_end_with_the_last_refusal(
    gw: Gateway, upstreams: tuple[Replica, Replica, AnthropicMock]
) -> None:
    primary, secondary, _ = upstreams
    primary.steer = secondary.steer = {"status": 400, "error": OPENAI_CONTEXT}
    with pytest.raises(openai.BadRequestError) as info:
        chat(gw, "loop-a")
    assert info.value.code == "context_length_exceeded"
    assert info.value.response.headers["x-gatecore-attempts"] == "2"
    assert (primary.hits, secondary.hits) == (1, 1)  # each model once: no loop


def test_anthropic_client_sees_the_fallbacks_answer(
    gw: Gateway, upstreams: tuple[Replica, Replica, AnthropicMock]
) -> None:
    primary, secondary, _ = upstreams
    primary.steer = {"status": 400, "error": AZURE_FILTER}
    with make_anthropic(gw) as client:
        raw = client.messages.with_raw_response.create(
            model="guarded", max_tokens=50, messages=[{"role": "user", "content": "hello there"}]
        )
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == "mock: hello there"
    assert raw.headers["x-gatecore-model"] == "s/lenient-model"
    assert (primary.hits, secondary.hits) == (1, 1)
