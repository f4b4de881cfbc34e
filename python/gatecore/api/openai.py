"""The fields of OpenAI-format request bodies that gatecore's policy reads.

Everything else in a body is never decoded: the original bytes are forwarded. Large fields the
gateway only needs to see the shape of (`messages`, `prompt`, `input`) are kept as `msgspec.Raw`.
"""

from __future__ import annotations

import msgspec


class StreamOptions(msgspec.Struct):
    include_usage: bool | None = None


class ResponseFormat(msgspec.Struct):
    """Only its `type` is read (a JSON schema request goes where JSON output is supported)."""

    type: str = ""


class ChatFields(msgspec.Struct):
    """`POST /v1/chat/completions`."""

    model: str
    messages: list[msgspec.Raw]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    n: int | None = None
    # Read for routing (routing/capabilities.py): requests with tools go where tools are supported.
    tools: list[msgspec.Raw] | None = None
    functions: list[msgspec.Raw] | None = None
    response_format: ResponseFormat | None = None


class CompletionFields(msgspec.Struct):
    """`POST /v1/completions`."""

    model: str
    prompt: msgspec.Raw = msgspec.Raw(b"null")  # `Raw | None` would accept null only
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    n: int | None = None


class EmbeddingFields(msgspec.Struct):
    """`POST /v1/embeddings`."""

    model: str
    input: msgspec.Raw


class Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_details: TokenDetails | None = None
    completion_tokens_details: TokenDetails | None = None
    # Other wordings of the same figures: the rest of OpenAI's surface (images and transcriptions
    # `input_tokens` / `output_tokens`, rerank servers only `total_tokens`, the input they read) and
    # the Responses API (a passed-through `response` object, with its details).
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: TokenDetails | None = None
    output_tokens_details: TokenDetails | None = None


class TokenDetails(msgspec.Struct):
    cached_tokens: int = 0
    reasoning_tokens: int = 0


class FinishOnly(msgspec.Struct):
    finish_reason: str | None = None


class UsageOnly(msgspec.Struct):
    """A response body decoded just for its usage (and the finish reasons, for traces)."""

    usage: Usage | None = None
    choices: list[FinishOnly] | None = None
