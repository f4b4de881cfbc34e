"""The Provider protocol every upstream wire format implements, and the factory from config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from gatecore.config.schema import ProviderConfig

if TYPE_CHECKING:
    from gatecore.request import RequestContext
    from gatecore.upstream.pool import PoolSet
    from gatecore.upstream.response import UpstreamResponse
    from gatecore.upstream.timeouts import Timeouts


class Provider(Protocol):
    """An upstream wire format bound to one configured provider."""

    name: str
    tokenizer: str

    async def send(self, ctx: RequestContext, upstream_model: str, timeouts: Timeouts) -> UpstreamResponse:
        """Send the request of `ctx` for `upstream_model`; return once the answer's head has arrived."""
        ...

    def rewrite_body(self, body: bytes, client_model: str) -> bytes:
        """A non-streamed response body as the client sees it (model name mapped back)."""
        ...


def build_provider(config: ProviderConfig, pools: PoolSet) -> Provider:
    """The Provider for one `providers[]` entry (its kind was validated when the config loaded)."""
    if config.kind == "openai":
        from gatecore.providers.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(config, pools)
    if config.kind == "echo":
        from gatecore.providers.echo import EchoProvider

        return EchoProvider(config)
    raise ValueError(f"unknown provider kind {config.kind!r}")
