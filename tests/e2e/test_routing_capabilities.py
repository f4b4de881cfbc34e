"""The capability filter: a request needing tools, image input, a JSON schema or a long context goes
only to deployments that can take it (configured capabilities and context windows, or the shipped
model table's), a too-long one to the model's `context_fallbacks`, and one nothing fits is a 400 in
the client's own API shape naming what is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from ..upstreams.replica_mock import Replica
from .anthropic_client import make_anthropic
from .conftest import make_client
from .gateway import MASTER_KEY, Gateway, running_gateway, write_config

TIMEOUTS = {"connect": 2, "first_byte": 5, "idle": 5, "total": 10}
SMALL_ONLY_KEY = "sk-small-only-e2e-61f0"
TOOLS: list[ChatCompletionToolParam] = [
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
]
IMAGE: list[ChatCompletionMessageParam] = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ],
    }
]
SCHEMA: Any = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}},
}
TEXT_ONLY = {"tools": False, "vision": False, "json": False}
EVERYTHING = {"tools": True, "vision": True, "json": True}


def deployment(provider: str, model: str, **extra: Any) -> dict[str, Any]:
    return {"provider": provider, "model": model, **extra}


def model(name: str, *deployments: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "timeouts": TIMEOUTS, "deployments": list(deployments), **extra}


@pytest.fixture(scope="module")
def replicas() -> Iterator[tuple[Replica, Replica, Replica]]:
    with Replica() as a, Replica() as b, Replica() as c:
        yield a, b, c


@pytest.fixture(scope="module")
def gw(
    replicas: tuple[Replica, Replica, Replica], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    a, b, c = replicas
    rr = {"strategy": "round_robin"}
    cfg = {
        "providers": [
            {"name": name, "kind": "openai", "base_url": replica.base_url, "api_key": "sk-up"}
            for name, replica in (("a", a), ("b", b), ("c", c))
        ],
        "models": [
            model(
                "mixed",
                deployment("a", "text-model", capabilities=TEXT_ONLY),
                deployment("b", "smart-model", capabilities=EVERYTHING),
                routing=rr,
            ),
            model(
                "split",
                deployment("a", "tool-model", capabilities={"tools": True, "vision": False}),
                deployment("b", "eye-model", capabilities={"tools": False, "vision": True}),
            ),
            model("text-only", deployment("a", "text-model"), capabilities={"vision": False}),
            # Nothing configured: the shipped model table knows gpt-4 (8,192 tokens, no image input).
            model("table-gpt4", deployment("a", "gpt-4")),
            model("small", deployment("a", "small-model"), context_window=1000, context_fallbacks=["big"]),
            model("big", deployment("b", "big-model"), context_window=100_000),
            model(
                "windows",
                deployment("a", "short-model", context_window=1000),
                deployment("b", "long-model", context_window=100_000),
                routing=rr,
            ),
            # A wildcard deployment: looked up in the table by the model each request names.
            model("openai/*", deployment("c", "*")),
            model(
                "failover-fit",
                deployment("a", "text-model", capabilities=TEXT_ONLY),
                deployment("b", "tool-model-1", capabilities=EVERYTHING),
                deployment("c", "tool-model-2", capabilities=EVERYTHING, priority=1),
            ),
        ],
        "auth": {"master_key": MASTER_KEY, "keys": [{"key": SMALL_ONLY_KEY, "models": ["small"]}]},
        "routing": {"breaker": {"enabled": False}},
    }
    workdir: Path = tmp_path_factory.mktemp("capabilities")
    with running_gateway(["--config", str(write_config(cfg, workdir / "g.yaml"))], workdir, config=cfg) as g:
        yield g


@pytest.fixture(autouse=True)
def fresh(replicas: tuple[Replica, Replica, Replica]) -> None:
    for replica in replicas:
        replica.clear()
        replica.steer = {}


def chat(gw: Gateway, model: str, key: str = MASTER_KEY, **kwargs: Any) -> Any:
    kwargs.setdefault("messages", [{"role": "user", "content": "hi"}])
    with make_client(gw, key) as client:
        return client.chat.completions.with_raw_response.create(model=model, **kwargs)


def long_text(words: int) -> str:
    # "lorem " is one o200k token per word: `words` tokens, about 6 bytes each.
    return "lorem " * words


def test_plain_requests_use_the_whole_pool(gw: Gateway, replicas: tuple[Replica, Replica, Replica]) -> None:
    a, b, _ = replicas
    served = {chat(gw, "mixed").headers["x-gatecore-model"] for _ in range(4)}
    assert served == {"a/text-model", "b/smart-model"}
    assert (a.hits, b.hits) == (2, 2)


@pytest.mark.parametrize(
    "extra",
    [{"tools": TOOLS}, {"messages": IMAGE}, {"response_format": SCHEMA}],
    ids=["tools", "vision", "json-schema"],
)
def test_needs_go_only_where_they_fit(
    gw: Gateway, replicas: tuple[Replica, Replica, Replica], extra: dict[str, Any]
) -> None:
    a, b, _ = replicas
    for _ in range(4):
        raw = chat(gw, "mixed", **extra)
        assert raw.headers["x-gatecore-model"] == "b/smart-model"
        assert raw.parse().model == "mixed"
    assert (a.hits, b.hits) == (0, 4)
    sent = b.requests[0].body_json
    assert sent["model"] == "smart-model"
    for field in extra:
        assert field in sent  # forwarded untouched


def test_a_missing_capability_is_a_400_naming_it(
    gw: Gateway, replicas: tuple[Replica, Replica, Replica]
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat(gw, "text-only", messages=IMAGE)
    error = info.value.body
    assert isinstance(error, dict)
    assert error["code"] == "capability_not_supported"
    assert error["param"] == "messages"
    assert "'text-only' does not support image input" in error["message"]
    # The shipped model table alone: gpt-4 takes no images.
    with pytest.raises(openai.BadRequestError) as info:
        chat(gw, "table-gpt4", messages=IMAGE)
    assert "does not support image input" in str(info.value)
    # Tools it supports (the table says so): served.
    assert chat(gw, "table-gpt4", tools=TOOLS).headers["x-gatecore-model"] == "a/gpt-4"
    assert all(r.body_json["model"] == "gpt-4" for r in replicas[0].requests)


def test_needs_no_single_deployment_meets(gw: Gateway, replicas: tuple[Replica, Replica, Replica]) -> None:
    assert chat(gw, "split", tools=TOOLS).headers["x-gatecore-model"] == "a/tool-model"
    assert chat(gw, "split", messages=IMAGE).headers["x-gatecore-model"] == "b/eye-model"
    with pytest.raises(openai.BadRequestError) as info:
        chat(gw, "split", messages=IMAGE, tools=TOOLS)
    assert "No single deployment of the model 'split' supports tools and image input together" in str(
        info.value
    )
    assert replicas[0].hits + replicas[1].hits == 2  # the refused request reached no upstream


def test_anthropic_client_gets_its_own_error_shape(
    gw: Gateway, replicas: tuple[Replica, Replica, Replica]
) -> None:
    image: Any = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    with make_anthropic(gw) as client:
        with pytest.raises(anthropic.BadRequestError) as info:
            client.messages.create(
                model="text-only", max_tokens=20, messages=[{"role": "user", "content": [image]}]
            )
        assert info.value.status_code == 400
        body = info.value.response.json()
        assert body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error"
        assert "does not support image input" in body["error"]["message"]
        # The same image to a pool: only the deployment that takes images.
        raw = client.messages.with_raw_response.create(
            model="mixed", max_tokens=20, messages=[{"role": "user", "content": [image]}]
        )
    assert raw.headers["x-gatecore-model"] == "b/smart-model"
    assert replicas[0].hits == 0


def test_long_request_goes_to_the_context_fallback(
    gw: Gateway, replicas: tuple[Replica, Replica, Replica]
) -> None:
    a, b, _ = replicas
    short = chat(gw, "small")
    assert short.headers["x-gatecore-model"] == "a/small-model"
    raw = chat(gw, "small", messages=[{"role": "user", "content": long_text(1500)}])
    assert raw.headers["x-gatecore-model"] == "b/big-model"
    assert raw.headers["x-gatecore-attempts"] == "1"  # decided before sending: nothing was refused
    assert raw.parse().model == "small"  # the client's name, whoever served
    assert (a.hits, b.hits) == (1, 1)
    # max_tokens counts: 600 prompt tokens fit 1,000, not with 600 more to generate.
    prompt = [{"role": "user", "content": long_text(600)}]
    assert chat(gw, "small", messages=prompt, max_tokens=100).headers["x-gatecore-model"] == "a/small-model"
    assert chat(gw, "small", messages=prompt, max_tokens=600).headers["x-gatecore-model"] == "b/big-model"


def test_too_long_everywhere_is_context_length_exceeded(gw: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat(gw, "table-gpt4", messages=[{"role": "user", "content": long_text(9000)}])
    error = info.value.body
    assert isinstance(error, dict)
    assert error["code"] == "context_length_exceeded"
    assert error["param"] == "messages"
    assert "context window 8192 tokens" in error["message"]
    # A key that may not use the context fallback: the same 400, not the fallback.
    with pytest.raises(openai.BadRequestError) as info:
        chat(gw, "small", key=SMALL_ONLY_KEY, messages=[{"role": "user", "content": long_text(1500)}])
    assert info.value.code == "context_length_exceeded"
    assert "or its context fallbacks" in info.value.message


def test_pool_with_mixed_windows(gw: Gateway, replicas: tuple[Replica, Replica, Replica]) -> None:
    a, b, _ = replicas
    long = [{"role": "user", "content": long_text(1500)}]
    served = [chat(gw, "windows", messages=long).headers["x-gatecore-model"] for _ in range(3)]
    assert served == ["b/long-model"] * 3
    assert {chat(gw, "windows").headers["x-gatecore-model"] for _ in range(2)} == {
        "a/short-model",
        "b/long-model",
    }
    assert (a.hits, b.hits) == (1, 4)


def test_retries_stay_within_what_fits(gw: Gateway, replicas: tuple[Replica, Replica, Replica]) -> None:
    a, b, c = replicas
    b.steer = {"status": 500}
    raw = chat(gw, "failover-fit", tools=TOOLS)
    assert raw.headers["x-gatecore-model"] == "c/tool-model-2"
    assert raw.headers["x-gatecore-attempts"] == "2"
    assert (a.hits, b.hits, c.hits) == (0, 1, 1)


def test_wildcard_model_judged_by_the_model_asked_for(
    gw: Gateway, replicas: tuple[Replica, Replica, Replica]
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat(gw, "openai/gpt-4", messages=IMAGE)
    assert "'openai/gpt-4' does not support image input" in info.value.message
    raw = chat(gw, "openai/gpt-4o", messages=IMAGE)
    assert raw.headers["x-gatecore-model"] == "c/gpt-4o"
    assert [r.body_json["model"] for r in replicas[2].requests] == ["gpt-4o"]
