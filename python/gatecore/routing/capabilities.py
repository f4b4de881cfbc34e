"""What a request needs of a deployment (tools, image input, a JSON schema, a long context) and what
each deployment is known to offer.

A request's needs are read from fields the body decoder decodes anyway (`tools`, `functions`,
`response_format.type`) and, for images, a byte search of the body that is confirmed by a decode
only when it hits: a request that needs nothing pays two attribute tests and a substring search.

A deployment's capabilities come from its own config, else its model's, else the shipped model table
(providers/model_table.py) for its upstream model (tools, vision, context window; JSON output only
from config), else they are unknown. Routing excludes only a
deployment known to lack something: an unknown capability is given the benefit of the doubt (the
upstream then answers for itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from gatecore.config.schema import CapabilitiesConfig
from gatecore.providers.model_table import model_facts

if TYPE_CHECKING:
    from gatecore.api.openai import ChatFields

TOOLS = 1
VISION = 2
JSON_SCHEMA = 4
NEED_NAMES = ((TOOLS, "tools"), (VISION, "image input"), (JSON_SCHEMA, "JSON schema output"))
IMAGE_PART = b'"image_url"'  # a content part of an image, as a byte string
_CACHE_LIMIT = 1024  # upstream model names a wildcard deployment remembers


class _Part(msgspec.Struct):
    type: str = ""


class _Message(msgspec.Struct):
    content: str | list[_Part] | None = None


class _Messages(msgspec.Struct):
    messages: list[_Message] = []


_messages_decoder = msgspec.json.Decoder(_Messages)


def chat_needs(fields: ChatFields, body: bytes) -> int:
    """The capability bits an OpenAI chat request needs (0: nothing special)."""
    needs = 0
    if fields.tools or fields.functions:
        needs = TOOLS
    response_format = fields.response_format
    if response_format is not None and response_format.type == "json_schema":
        needs |= JSON_SCHEMA
    if IMAGE_PART in body and _has_image_part(body):
        needs |= VISION
    return needs


def translated_needs(body: bytes, tools: bool) -> int:
    """The needs of a request translated into the hub format by gatecore itself (its encoder escapes
    any `"image_url"` inside text, so the byte search alone is exact)."""
    return (TOOLS if tools else 0) | (VISION if IMAGE_PART in body else 0)


def _has_image_part(body: bytes) -> bool:
    """Whether some message has an `image_url` content part (the byte search hit, so confirm it)."""
    try:
        messages = _messages_decoder.decode(body).messages
    except msgspec.DecodeError:
        return True  # a shape the decoder does not know: the upstream will judge it
    return any(
        isinstance(message.content, list) and any(part.type == "image_url" for part in message.content)
        for message in messages
    )


def describe(needs: int) -> str:
    """`tools and image input` for the bits of `needs`."""
    names = [name for bit, name in NEED_NAMES if needs & bit]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class Capabilities:
    """What one deployment (for one upstream model) offers: each of tools, vision and JSON output
    True, False or None (unknown), and its context window in tokens (None: unknown)."""

    __slots__ = ("context_window", "json", "lacking", "tools", "vision")

    def __init__(
        self, tools: bool | None, vision: bool | None, json: bool | None, context_window: int | None
    ):
        self.tools = tools
        self.vision = vision
        self.json = json
        self.context_window = context_window
        # The needs this deployment is known not to meet.
        self.lacking = (
            (TOOLS if tools is False else 0)
            | (VISION if vision is False else 0)
            | (JSON_SCHEMA if json is False else 0)
        )

    def fits(self, needs: int, tokens: int) -> bool:
        """Whether a request with these needs and `tokens` (prompt estimate + max_tokens; 0: not
        counted) may go here."""
        if self.lacking & needs:
            return False
        window = self.context_window
        return not tokens or window is None or tokens <= window


class CapabilitySource:
    """A deployment's capabilities: fixed for a named upstream model, looked up per upstream model
    (and remembered) for a wildcard deployment."""

    __slots__ = ("_cache", "_configs", "_window", "fixed")

    def __init__(
        self,
        model: str,
        configs: tuple[CapabilitiesConfig | None, CapabilitiesConfig | None],
        context_window: int | None,
    ):
        self._configs = configs  # the deployment's own, then its model's
        self._window = context_window  # configured (the deployment's, else the model's)
        self._cache: dict[str, Capabilities] = {}
        self.fixed = None if model == "*" else self._resolve(model)

    def of(self, upstream_model: str) -> Capabilities:
        """The capabilities when serving `upstream_model`."""
        fixed = self.fixed
        if fixed is not None:
            return fixed
        found = self._cache.get(upstream_model)
        if found is None:
            found = self._resolve(upstream_model)
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[upstream_model] = found
        return found

    def _resolve(self, upstream_model: str) -> Capabilities:
        facts = model_facts(upstream_model) if upstream_model else None
        values: list[bool | None] = []
        for field in ("tools", "vision", "json"):
            value = next(
                (getattr(c, field) for c in self._configs if c and getattr(c, field) is not None), None
            )
            # JSON schema output is the engine's, not the model's: vLLM, SGLang, TGI, llama.cpp and
            # Ollama constrain any model's decoding to a schema, so the table's model-level `json`
            # says nothing about a deployment; only a configured value counts.
            if value is None and facts is not None and field != "json":
                value = getattr(facts, field)
            values.append(value)
        window = self._window if self._window is not None else (facts.context_window if facts else None)
        return Capabilities(values[0], values[1], values[2], window)
