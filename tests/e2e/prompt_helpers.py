"""Shared pieces of the published-prompt tests: the config, calling a prompt with the openai SDK."""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from ..upstreams.openai_mock import MockUpstream
from .gateway import MASTER_KEY

PRICES = {"input_per_1m": 1.0, "output_per_1m": 2.0}


def prompts_config(upstream: MockUpstream, store_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "providers": [
            {"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "${UP_KEY}"}
        ],
        "models": [
            {"name": name, "deployments": [{"provider": "up", "model": f"up-{name}", "pricing": PRICES}]}
            for name in ("gpt-a", "gpt-b")
        ],
        "auth": {"master_key": MASTER_KEY, "key_hash_secret": "prompts-hash-secret-0123456789"},
        "store": {"url": store_url},
        "ledger": {"flush_interval_s": 0.05},
        **extra,
    }


def call_prompt(
    client: openai.OpenAI,
    name: str,
    body: dict[str, Any],
    *,
    label: str | None = None,
    version: int | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[ChatCompletion, int]:
    """A published prompt's answer (through the SDK's own request path) and its version header."""
    params: dict[str, Any] = {}
    if label is not None:
        params["label"] = label
    if version is not None:
        params["version"] = version
    raw = client.with_options(default_headers=headers or {}).post(
        f"/prompts/{name}",
        cast_to=openai._legacy_response.HttpxBinaryResponseContent,
        body=body,
        options={"params": params},
    )
    response = raw.response
    completion = ChatCompletion.model_validate(response.json())
    return completion, int(response.headers["x-gatecore-prompt-version"])


def stream_prompt(client: openai.OpenAI, name: str, body: dict[str, Any]) -> list[ChatCompletionChunk]:
    stream = client.post(
        f"/prompts/{name}",
        cast_to=ChatCompletionChunk,
        body={**body, "stream": True},
        stream=True,
        stream_cls=openai.Stream[ChatCompletionChunk],
    )
    return list(stream)


def template(name: str, content: str, **extra: Any) -> dict[str, Any]:
    """A one-message template prompt on gpt-a with a `topic` string variable."""
    return {
        "name": name,
        "model": "gpt-a",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}],
        "variables": {
            "type": "object",
            "properties": {"topic": {"type": "string"}},
            "required": ["topic"],
        },
        **extra,
    }
