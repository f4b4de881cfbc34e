"""gatecore: a fast OpenAI- and Anthropic-compatible gateway in front of many model providers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gatecore")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["__version__"]
