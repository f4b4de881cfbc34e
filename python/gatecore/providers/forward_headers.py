"""Client request headers a provider passes on to its upstream: a per-provider allow-list.

Nothing the client sends reaches an upstream unless its name is allowed: by the provider's kind
(Anthropic's `anthropic-beta`, which Claude Code and the Anthropic SDKs send) or by the operator
(`providers[].forward_headers`; config/validate.py refuses credentials and the headers gatecore itself
writes). A header the provider's own `headers` configure wins over the client's.

`anthropic-version` is not forwarded by default: gatecore writes the Anthropic request itself, in the
shape of the provider's `api_version` (default 2023-06-01), and reads the answer in that shape, so that
is the version the upstream must be told. An operator who lists it gets the client's version instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from gatecore.config.schema import ProviderConfig
from gatecore.request import RequestContext

# Longer values are not forwarded (Anthropic's longest beta lists are a few hundred bytes).
MAX_VALUE_CHARS = 4096
# The headers each kind forwards without configuration.
KIND_DEFAULTS: dict[str, tuple[str, ...]] = {"anthropic": ("anthropic-beta",)}


class ForwardHeaders:
    """The allow-listed client headers of one provider, read from each request."""

    __slots__ = ("names",)

    def __init__(self, names: Iterable[str]):
        self.names = tuple(dict.fromkeys(name.lower() for name in names))

    @classmethod
    def of(cls, config: ProviderConfig) -> ForwardHeaders:
        """The kind's defaults and the configured names, less those the provider sets itself."""
        configured = {name.lower() for name in config.headers}
        names = (*KIND_DEFAULTS.get(config.kind, ()), *config.forward_headers)
        return cls(name for name in names if name.lower() not in configured)

    def __bool__(self) -> bool:
        return bool(self.names)

    def values(self, ctx: RequestContext) -> list[tuple[str, str]]:
        """The allowed headers the client sent, each a printable value of bounded length."""
        headers = ctx.headers
        if headers is None:
            return []
        out = []
        for name in self.names:
            value = headers.get(name)
            if value and len(value) <= MAX_VALUE_CHARS and value.isascii() and value.isprintable():
                out.append((name, value))
        return out

    def lines(self, ctx: RequestContext) -> bytes:
        """`values` as header lines of a request head."""
        return "".join(f"{name}: {value}\r\n" for name, value in self.values(ctx)).encode("ascii")
