"""The shared part of the providers that POST a JSON body of their own format to one origin.

`JsonProvider` holds what they all do alike: the request head built once (JsonPost), a 2xx answer to
a stream request relayed as a stream, and an error answer read from one message field. On top:
`ChatJsonProvider` for chat-only APIs (Cohere, Ollama: one path, the body built from the chat
request) and `PromptJsonProvider` for text-generation engines (TGI, Triton: a prompt in, text out,
answered as a chat or a text completion).
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from gatecore._core import count_tokens
from gatecore.config.schema import ProviderConfig
from gatecore.errors import GatewayError, UpstreamError
from gatecore.providers.base import require_chat
from gatecore.providers.from_hub_request import JsonObject, load_chat
from gatecore.providers.json_post import JsonPost, bearer_headers
from gatecore.providers.to_hub_bodies import TextChunkWriter, chat_completion_body, text_completion_body
from gatecore.providers.to_hub_chunks import ChunkWriter
from gatecore.providers.upstream_errors import json_object, openai_error_type, unshaped_error
from gatecore.request import CHAT, RequestContext
from gatecore.upstream.pool import PoolSet
from gatecore.upstream.response import UpstreamResponse
from gatecore.upstream.timeouts import Timeouts


class JsonProvider:
    """Name, tokenizer and request head of one configured provider; `is_stream` and `decode_error`."""

    kind: ClassVar[str]
    # The field of an error answer (a JSON object) that holds its message.
    error_field: ClassVar[str] = "error"

    def __init__(
        self,
        config: ProviderConfig,
        pools: PoolSet,
        default_url: str | None = None,
        default_headers: dict[str, str] | None = None,
    ):
        base_url = config.base_url or default_url
        assert base_url is not None  # config validation requires one where there is no default
        self.name = config.name
        self.tokenizer = config.tokenizer
        self.post = JsonPost(base_url, pools, bearer_headers(config, default_headers))

    def is_stream(self, ctx: RequestContext, response: UpstreamResponse) -> bool:
        """Any 2xx answer to a stream request is decoded as the provider's stream: an answer in
        another format fails its decoder's first check, ending the client's stream with an error event."""
        return ctx.stream and response.status < 400

    def decode_error(self, status: int, body: bytes) -> GatewayError:
        """The error answer's message (`error_field`), or the answer quoted when it has none."""
        doc = json_object(body)
        message = doc.get(self.error_field) if doc else None
        if doc is None or not isinstance(message, str):
            return unshaped_error(status, body)
        return self.upstream_error(status, message, doc)

    def upstream_error(self, status: int, message: str, doc: dict[str, Any]) -> GatewayError:
        """The error of an answer with a message (`doc` is the whole answer, for providers that say more)."""
        return UpstreamError(message, status=status, type_=openai_error_type(status), code="upstream_error")


class ChatJsonProvider(JsonProvider):
    """A chat-only API: the chat request translated into one body POSTed to `path`."""

    path: ClassVar[str]

    async def send(self, ctx: RequestContext, upstream_model: str, timeouts: Timeouts) -> UpstreamResponse:
        """Translate the chat request (chat only: other endpoints get a 400) and POST it to `path`."""
        require_chat(ctx, self.kind)
        body = orjson.dumps(self.chat_body(load_chat(ctx.body), upstream_model, ctx.stream))
        return await self.post.send(ctx, self.path, body, timeouts)

    def chat_body(self, doc: JsonObject, model: str, stream: bool) -> JsonObject:
        """The provider's request body for an OpenAI chat request."""
        raise NotImplementedError


class PromptJsonProvider(JsonProvider):
    """A text-generation engine: the completions prompt, or the chat rendered with `chat_template`."""

    def __init__(self, config: ProviderConfig, pools: PoolSet):
        super().__init__(config, pools)
        self.template = config.chat_template

    async def send(self, ctx: RequestContext, upstream_model: str, timeouts: Timeouts) -> UpstreamResponse:
        """Build the prompt and the engine's generate request, and POST it."""
        doc = load_chat(ctx.body)
        path, request = self.generate(doc, self.prompt(ctx, doc), upstream_model, ctx.stream)
        return await self.post.send(ctx, path, orjson.dumps(request), timeouts)

    def prompt(self, ctx: RequestContext, doc: JsonObject) -> str:
        """The prompt text of a completions or chat request."""
        raise NotImplementedError

    def generate(self, doc: JsonObject, prompt: str, model: str, stream: bool) -> tuple[str, JsonObject]:
        """The path and body of the engine's generate request."""
        raise NotImplementedError

    def prompt_tokens(self, ctx: RequestContext) -> int:
        """The prompt's tokens, counted by the gateway with the provider's tokenizer."""
        return count_tokens(self.prompt(ctx, load_chat(ctx.body)), self.tokenizer)

    def writer(self, ctx: RequestContext) -> ChunkWriter | TextChunkWriter:
        """The chunks of a streamed answer: chat or text completion, as the client asked."""
        if ctx.endpoint.hub is CHAT:
            return ChunkWriter(f"chatcmpl-{ctx.request_id}", ctx.client_model)
        return TextChunkWriter(f"cmpl-{ctx.request_id}", ctx.client_model)

    def completion_body(self, ctx: RequestContext, text: str, reason: str, usage: JsonObject) -> bytes:
        """A whole answer: a chat or text completion, as the client asked."""
        if ctx.endpoint.hub is CHAT:
            return chat_completion_body(f"chatcmpl-{ctx.request_id}", ctx.client_model, text, reason, usage)
        return text_completion_body(f"cmpl-{ctx.request_id}", ctx.client_model, text, reason, usage)
