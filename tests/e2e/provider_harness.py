"""What the provider suites share: a gateway over one mock upstream, and stream helpers."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from .conftest import make_client, new_request_id
from .gateway import MASTER_KEY, Gateway, running_gateway, write_config

__all__ = [
    "MASTER_KEY",
    "StreamResult",
    "chat",
    "collect_stream",
    "error_body",
    "gateway_for",
    "new_request_id",
    "tool_calls_of",
]

TIMEOUTS = {"connect": 2, "first_byte": 5, "idle": 5, "total": 15}


@contextlib.contextmanager
def gateway_for(
    tmp_path_factory: pytest.TempPathFactory,
    provider: dict[str, Any],
    models: dict[str, str],
    *,
    extra_providers: list[dict[str, Any]] | None = None,
    extra_models: list[dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
    model_options: dict[str, Any] | None = None,
) -> Iterator[Gateway]:
    """A gatecore with one provider and a model per `{client name: upstream model}` (each with
    `model_options` added to its config entry)."""
    config = {
        "server": {"access_log": True},
        "providers": [provider, *(extra_providers or [])],
        "models": [
            {
                "name": name,
                "deployments": [{"provider": provider["name"], "model": model}],
                "timeouts": TIMEOUTS,
                **(model_options or {}),
            }
            for name, model in models.items()
        ]
        + (extra_models or []),
        "auth": {"master_key": MASTER_KEY},
    }
    workdir: Path = tmp_path_factory.mktemp(provider["name"])
    path = write_config(config, workdir / "gatecore.yaml")
    with running_gateway(["--config", str(path)], workdir, config=config, env=env) as gw:
        yield gw


class StreamResult:
    def __init__(self, chunks: list[ChatCompletionChunk], error: openai.APIError | None, elapsed: float):
        self.chunks = chunks
        self.error = error
        self.elapsed = elapsed

    @property
    def text(self) -> str:
        return "".join(c.choices[0].delta.content or "" for c in self.chunks if c.choices)

    @property
    def finish_reason(self) -> str | None:
        reasons = [
            c.choices[0].finish_reason for c in self.chunks if c.choices and c.choices[0].finish_reason
        ]
        return reasons[-1] if reasons else None


def collect_stream(gw: Gateway, rid: str, **kwargs: Any) -> StreamResult:
    """Stream a chat completion with the openai SDK; an error raised mid-stream is captured."""
    chunks: list[ChatCompletionChunk] = []
    error = None
    started = time.monotonic()
    with make_client(gw, timeout=10.0) as client:
        stream = client.chat.completions.create(stream=True, extra_headers={"x-request-id": rid}, **kwargs)
        try:
            with stream:
                chunks.extend(stream)
        except openai.APIError as exc:
            error = exc
    return StreamResult(chunks, error, time.monotonic() - started)


def tool_calls_of(chunks: list[ChatCompletionChunk]) -> list[dict[str, str]]:
    """Streamed tool-call deltas assembled as OpenAI clients do: by index, arguments concatenated."""
    calls: dict[int, dict[str, str]] = {}
    order: list[int] = []
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                if delta.index not in calls:
                    assert delta.id and delta.function and delta.function.name, "first delta lacks id/name"
                    calls[delta.index] = {"id": delta.id, "name": delta.function.name, "arguments": ""}
                    order.append(delta.index)
                else:
                    assert delta.id is None, "a later delta repeated the id"
                if delta.function and delta.function.arguments:
                    calls[delta.index]["arguments"] += delta.function.arguments
    return [calls[i] for i in order]


def chat(client: openai.OpenAI, **body: Any) -> ChatCompletion:
    """A non-streamed chat completion; the body as plain keyword arguments (untyped test data)."""
    result: ChatCompletion = client.chat.completions.create(**body)
    return result


def error_body(error: openai.APIStatusError) -> dict[str, Any]:
    """The `error` object of an OpenAI error answer (the SDK puts it in `.body`)."""
    body = error.body
    assert isinstance(body, dict), body
    return body
