"""What the provider-translation suites share: a gateway over one mock provider, stream reading and
the checks every translated error and broken stream must pass."""

from __future__ import annotations

import json
from typing import Any

from .. import raw_http
from ..gateway import MASTER_KEY, Gateway

# The image every vision test sends (a 1x1 PNG).
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
IMAGE_URL = "https://example.com/cat.png"

WEATHER_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Local time of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
            },
        },
    },
]


# A user turn with an inline (base64) image and one by URL.
IMAGE_MESSAGES: list[Any] = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
            {"type": "image_url", "image_url": {"url": IMAGE_URL}},
        ],
    }
]
# An image only reachable by URL, for providers that take inline images alone.
REMOTE_IMAGE: dict[str, Any] = {
    "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
    ]
}

# The scripted suites' (bedrock, cohere, ollama) tools, and the conversation they translate.
PLAIN_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {"name": f, "description": f"{f} tool", "parameters": {"type": "object"}},
    }
    for f in ("get_weather", "get_time")
]
TURNS: list[Any] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "hello"},
    {"role": "user", "content": "how are you"},
]


def provider_config(provider: dict[str, Any], prefix: str) -> dict[str, Any]:
    """One provider behind a wildcard model `<prefix>/*` (so tests steer the mock by model name)."""
    return {
        "server": {"access_log": True},
        "providers": [provider],
        "models": [
            {
                "name": f"{prefix}/*",
                "deployments": [{"provider": provider["name"], "model": "*"}],
                "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 10},
            }
        ],
        "auth": {"master_key": MASTER_KEY},
    }


def collect_tool_calls(chunks: list[Any]) -> list[dict[str, str]]:
    """Tool calls assembled from stream deltas the way OpenAI clients do (by index), checking that
    each call's first delta carries id, type and name and later ones only arguments."""
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                if delta.index not in calls:
                    assert delta.id and delta.type == "function" and delta.function.name
                    assert delta.function.arguments == ""
                    calls[delta.index] = {"id": delta.id, "name": delta.function.name, "arguments": ""}
                else:
                    assert delta.id is None and delta.function.name is None
                    calls[delta.index]["arguments"] += delta.function.arguments or ""
    assert sorted(calls) == list(range(len(calls)))
    return [calls[i] for i in sorted(calls)]


def assert_stream_ended_with_error(result: raw_http.StreamResult, secrets: tuple[str, ...]) -> dict[str, Any]:
    """A 200 stream whose last event is an OpenAI error event, without [DONE], that then ended."""
    assert result.status == 200
    assert result.events, "no event at all"
    last = json.loads(result.events[-1].data)
    assert "error" in last, f"the stream did not end with an error event: {result.data[-2:]}"
    error: dict[str, Any] = last["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    assert error["message"]
    assert b"[DONE]" not in result.data
    assert result.ended, "the response stayed open after the error event"
    for secret in secrets:
        assert secret.encode() not in b"".join(result.data)
    return error


def post(gw: Gateway, body: dict[str, Any]) -> raw_http.RawResponse:
    return raw_http.post_json(gw.port, "/v1/chat/completions", body, MASTER_KEY)
