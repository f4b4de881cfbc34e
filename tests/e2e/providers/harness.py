"""What the provider modules share besides the conformance cases: a gateway over their mock upstreams,
and stream helpers for their own tests."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from ...upstreams.mock_server import MockServer
from ..conftest import make_client
from ..gateway import MASTER_KEY, Gateway, running_gateway, write_config

__all__ = [
    "Setup",
    "StreamResult",
    "chat",
    "collect_stream",
    "error_body",
    "gateway_for",
]

TIMEOUTS = {"connect": 2, "first_byte": 5, "idle": 5, "total": 15}


@contextlib.contextmanager
def gateway_for(
    tmp_path_factory: pytest.TempPathFactory,
    providers: list[dict[str, Any]],
    models: dict[str, tuple[str, str]],
    *,
    env: dict[str, str] | None = None,
    model_options: dict[str, Any] | None = None,
) -> Iterator[Gateway]:
    """A gatecore with these providers and a model per ``{client name: (provider, upstream model)}``
    (each with ``model_options`` added to its config entry; an upstream model ``*`` makes a wildcard
    ``<name>`` like ``claude/*``, for mocks steered by model name). The circuit breaker is off: these
    suites send error after error to one deployment on purpose."""
    config = {
        "server": {"access_log": True},
        "providers": providers,
        "models": [
            {
                "name": name,
                "deployments": [{"provider": provider, "model": model}],
                "timeouts": TIMEOUTS,
                **(model_options or {}),
            }
            for name, (provider, model) in models.items()
        ],
        "routing": {"breaker": {"enabled": False}},
        "auth": {"master_key": MASTER_KEY},
    }
    workdir: Path = tmp_path_factory.mktemp(providers[0]["name"])
    path = write_config(config, workdir / "gatecore.yaml")
    with running_gateway(["--config", str(path)], workdir, config=config, env=env) as gw:
        yield gw


@dataclass(frozen=True)
class Setup:
    """A provider module's gateway, declared as data (its ``SETUP``; conftest.py turns it into the
    module's ``mock`` and ``target`` fixtures)."""

    mock: Callable[[], MockServer]
    """Makes the mock upstream (entered for the module)."""
    providers: Callable[[Any], list[dict[str, Any]]]
    """The provider config entries, given the running mock (for its address)."""
    models: dict[str, tuple[str, str]]
    """``{client name: (provider, upstream model)}``, as ``gateway_for`` takes them."""
    secrets: tuple[str, ...] = ()
    """Besides the master key, what no answer nor log may show."""
    env: dict[str, str] | None = None
    model_options: dict[str, Any] | None = None


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


def chat(client: openai.OpenAI, **body: Any) -> ChatCompletion:
    """A non-streamed chat completion; the body as plain keyword arguments (untyped test data)."""
    result: ChatCompletion = client.chat.completions.create(**body)
    return result


def error_body(error: openai.APIStatusError) -> dict[str, Any]:
    """The `error` object of an OpenAI error answer (the SDK puts it in `.body`)."""
    body = error.body
    assert isinstance(body, dict), body
    return body
