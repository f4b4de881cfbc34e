"""The Provider protocol every upstream wire format implements, and the registry that builds them.

The hub format is OpenAI Chat Completions: a provider gets the request as OpenAI JSON (`ctx.body`),
builds its own wire request from it, and turns its answer back into OpenAI JSON or OpenAI SSE events
(`decode_body`, `stream_decoder`, `decode_error`). The OpenAI pass-through translates nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

from gatecore.config.schema import PROVIDER_CLASSES, ProviderConfig
from gatecore.errors import InvalidRequest
from gatecore.request import CHAT

if TYPE_CHECKING:
    from gatecore.errors import GatewayError
    from gatecore.request import RequestContext
    from gatecore.upstream.pool import PoolSet
    from gatecore.upstream.response import UpstreamResponse
    from gatecore.upstream.timeouts import Timeouts


class StreamDecoder(Protocol):
    """Turns one upstream stream, in the provider's own framing, into OpenAI SSE events."""

    def feed(self, chunk: bytes) -> bytes:
        """Raw upstream bytes (split anywhere) → the OpenAI SSE events they complete, in order.

        Each event is `b'data: {...chat.completion.chunk...}\\n\\n'`, emitted as soon as its source
        event is complete. Raises UpstreamProtocolError on bad JSON or framing, and UpstreamStreamError
        when the upstream reports an error inside the stream.
        """
        ...

    def finish(self) -> bytes:
        """At upstream EOF: the remaining events and `b'data: [DONE]\\n\\n'`.

        Raises UpstreamProtocolError when the stream was truncated (no proper end) or malformed.
        """
        ...


class Provider(Protocol):
    """An upstream wire format bound to one configured provider."""

    name: str
    tokenizer: str

    async def send(self, ctx: RequestContext, upstream_model: str, timeouts: Timeouts) -> UpstreamResponse:
        """Build this provider's request from `ctx.body` (OpenAI JSON) for `upstream_model` and send it;
        return once the answer's head has arrived. A field the upstream cannot express raises
        InvalidRequest with `param` naming it."""
        ...

    def is_stream(self, ctx: RequestContext, response: UpstreamResponse) -> bool:
        """Whether `response` is relayed as a stream (else it is read whole and decoded)."""
        ...

    def stream_decoder(self, ctx: RequestContext) -> StreamDecoder | None:
        """The decoder of one streamed answer; None when the upstream already sends OpenAI SSE."""
        ...

    def decode_body(self, ctx: RequestContext, body: bytes) -> bytes:
        """A 2xx non-streamed body as an OpenAI response body whose `model` is `ctx.client_model`."""
        ...

    def decode_error(self, status: int, body: bytes) -> GatewayError:
        """An upstream error answer as a GatewayError in OpenAI's vocabulary (the status kept)."""
        ...


def build_provider(config: ProviderConfig, pools: PoolSet) -> Provider:
    """The Provider for one `providers[]` entry (its kind was validated when the config loaded).

    Each kind's class is named in `PROVIDER_CLASSES` as `module:Class` and imported on first use, so a
    gateway loads only the wire formats it is configured for. Every class takes `(config, pools)`.
    """
    target = PROVIDER_CLASSES.get(config.kind)
    if target is None:
        raise ValueError(f"unknown provider kind {config.kind!r}")
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    provider: Provider = cls(config, pools)
    return provider


def require_chat(ctx: RequestContext, kind: str) -> None:
    """Raise 400 naming the endpoint when a chat-only provider gets a completions/embeddings request."""
    if ctx.endpoint.hub is not CHAT:
        raise InvalidRequest(
            f"The {ctx.endpoint.name} endpoint is not available for this model (provider kind '{kind}'); "
            "use /v1/chat/completions.",
            code="unsupported_endpoint",
            param="model",
        )
