"""One module per upstream wire format, all behind the `Provider` protocol."""

from gatecore.providers.base import Provider, build_provider

__all__ = ["Provider", "build_provider"]
