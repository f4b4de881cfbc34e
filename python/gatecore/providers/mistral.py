"""Mistral's chat API (https://api.mistral.ai/v1/chat/completions): OpenAI's format with differences.

Mapped on the way up (API reference, "Chat Completion"):
- `seed` → `random_seed`; `max_completion_tokens` → `max_tokens`;
- tool_choice `required` → `any` (Mistral's name for "must call a tool"); named-function choices pass;
- `stream_options` is dropped: Mistral puts usage in its last stream chunk on its own;
- `user`, `store`, `metadata` and `service_tier` are dropped (bookkeeping fields it rejects);
- `logprobs`, `top_logprobs`, `logit_bias`, `audio`, `modalities`, `reasoning_effort` → 400 naming them.
Answers and streams are OpenAI's format and pass through (model name mapped back). Errors
(`{"object": "error", "message", "type", "code"}`, or `{"detail": ...}` for validation) are
rendered in OpenAI's shape.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from gatecore.config.schema import ProviderConfig
from gatecore.errors import GatewayError, UpstreamError
from gatecore.providers.base import require_chat
from gatecore.providers.from_hub_request import load_chat, reject_set
from gatecore.providers.openai_compat import OpenAICompatProvider
from gatecore.providers.upstream_errors import json_object, openai_error_type, unshaped_error
from gatecore.request import RequestContext
from gatecore.upstream.pool import PoolSet

_DROPPED = ("stream_options", "user", "store", "metadata", "service_tier")
_UNSUPPORTED: dict[str, tuple[object, ...]] = {
    "logprobs": (False,),
    "top_logprobs": (0,),
    "logit_bias": ({},),
    "audio": (),
    "modalities": (["text"],),
    "reasoning_effort": (),
    "functions": (),
    "function_call": (),
}


class MistralProvider(OpenAICompatProvider):
    """Mistral's OpenAI-like chat endpoint (chat only here; embeddings pass as OpenAI's format)."""

    def __init__(self, config: ProviderConfig, pools: PoolSet):
        # Usage comes in Mistral's last chunk without asking; stream_options would be rejected.
        super().__init__(msgspec.structs.replace(config, stream_usage=False), pools)

    def request_body(self, ctx: RequestContext, upstream_model: str) -> bytes:
        if ctx.endpoint.hub.name not in ("chat", "embeddings"):  # no completions, rerank, audio, images
            require_chat(ctx, "mistral")
        if ctx.endpoint.hub.name != "chat":
            return super().request_body(ctx, upstream_model)
        doc = load_chat(ctx.body)
        reject_set(doc, "mistral", _UNSUPPORTED)
        doc["model"] = upstream_model
        for field in _DROPPED:
            doc.pop(field, None)
        if "seed" in doc:
            doc["random_seed"] = doc.pop("seed")
        if "max_completion_tokens" in doc:
            doc["max_tokens"] = doc.pop("max_completion_tokens")
        if doc.get("tool_choice") == "required":
            doc["tool_choice"] = "any"
        return orjson.dumps(doc)

    def decode_error(self, status: int, body: bytes) -> GatewayError:
        doc = json_object(body)
        if doc is None:
            return unshaped_error(status, body)
        error: dict[str, Any] = doc["error"] if isinstance(doc.get("error"), dict) else doc
        message = error.get("message")
        if not isinstance(message, str):
            detail = error.get("detail")
            if detail is None:
                return unshaped_error(status, body)
            message = detail if isinstance(detail, str) else orjson.dumps(detail).decode()[:1000]
        type_ = error.get("type") if isinstance(error.get("type"), str) else openai_error_type(status)
        code = error.get("code")
        param = error.get("param")
        return UpstreamError(
            message,
            status=status,
            type_=type_,
            code=str(code) if code is not None else None,
            param=param if isinstance(param, str) else None,
        )
