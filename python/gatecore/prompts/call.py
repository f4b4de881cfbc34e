"""A call of a published prompt: its route's address (`/v1/prompts/{name}?label=L|?version=N`), its
body (`variables`, `stream`, extra `messages`, `user`, the parameters the prompt lets calls
override), and the hub chat body it renders to."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

import msgspec
from msgspec import Meta

from gatecore.errors import InvalidRequest, NotFound
from gatecore.prompts.spec import NAME, Compiled
from gatecore.request.prompt_ref import PromptRef

PATH_PREFIX = "/v1/prompts/"
MAX_EXTRA_MESSAGES = 64


class ExtraMessage(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["user", "assistant"]
    content: Annotated[str, Meta(max_length=200_000)]


class CallBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a caller sends; unknown members are parameter overrides, checked against the prompt."""

    variables: dict[str, Any] | None = None
    stream: bool = False
    messages: Annotated[list[ExtraMessage], Meta(max_length=MAX_EXTRA_MESSAGES)] = []
    user: Annotated[str, Meta(max_length=256)] | None = None


_DECODER = msgspec.json.Decoder(CallBody)
_ENCODE_MESSAGE = msgspec.json.encode
_FIELDS = frozenset(CallBody.__struct_fields__)


def prompt_ref(path: str, query: str) -> PromptRef:
    """The prompt a `POST /v1/prompts/{name}` names and how its version is chosen (400 for a bad query)."""
    name = path[len(PATH_PREFIX) :]
    if not NAME.match(name):
        raise NotFound(f"No prompt '{name[:100]}'.", code="prompt_not_found")
    if not query:  # the common call: production
        return PromptRef(name)
    parsed = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(parsed) - {"label", "version"})
    if unknown:
        raise InvalidRequest(
            f"Unknown query parameter '{unknown[0][:50]}'; use label or version.", param=unknown[0][:50]
        )
    if len(parsed) > 1 or any(len(v) != 1 for v in parsed.values()):
        raise InvalidRequest("Give one of 'label' and 'version', once.", param="version")
    label = parsed.get("label", [None])[0]
    if label is not None and not 1 <= len(label) <= 100:
        raise InvalidRequest("'label' must be 1-100 characters.", param="label")
    version = 0
    if "version" in parsed:
        text = parsed["version"][0]
        if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
            raise InvalidRequest("'version' must be a positive integer.", param="version")
        version = int(text)
    return PromptRef(name, label, version)


def decode_call(body: bytes) -> tuple[CallBody, dict[str, Any]]:
    """The call's body and its parameter overrides (400 for malformed JSON). One decode when the
    body has no override (most calls); the members beyond the call's own are read only then."""
    if not body.strip():
        return CallBody(), {}
    try:
        return _DECODER.decode(body), {}
    except msgspec.ValidationError as exc:
        if not str(exc).startswith("Object contains unknown field"):
            raise InvalidRequest(
                f"Invalid prompt call body: {str(exc)[:200]}.", code="invalid_body"
            ) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None
    raw = msgspec.json.decode(body)
    overrides = {k: v for k, v in raw.items() if k not in _FIELDS}
    try:
        call = msgspec.convert({k: v for k, v in raw.items() if k in _FIELDS}, CallBody)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"Invalid prompt call body: {str(exc)[:200]}.", code="invalid_body") from None
    return call, overrides


def chat_body(compiled: Compiled, call: CallBody, overrides: dict[str, Any], values: dict[str, Any]) -> bytes:
    """The hub chat body of one template call: the rendered messages, then the caller's extra ones,
    the template's parameters with the allowed overrides."""
    spec = compiled.spec
    for name in overrides:
        allowed = spec.overridable
        if name not in allowed:
            raise InvalidRequest(
                f"'{name[:60]}' may not be set on this prompt"
                + (f"; it allows {', '.join(sorted(allowed))}." if allowed else "; it allows no overrides."),
                code="override_not_allowed",
                param=name[:60],
            )
    if overrides:  # a call that changes parameters: built as an object (rarer)
        messages: list[Any] = compiled.render(values)
        messages += [{"role": m.role, "content": m.content} for m in call.messages]
        body: dict[str, Any] = {**(spec.params or {}), **overrides, "model": spec.model, "messages": messages}
        if call.stream:
            body["stream"] = True
        if call.user is not None:
            body["user"] = call.user
        return msgspec.json.encode(body)
    # The common call: the bytes known at publish time around the rendered contents.
    parts = [compiled.head, b',"messages":[', compiled.encode_messages(values)]
    for extra in call.messages:
        parts += (b",", _ENCODE_MESSAGE(extra))
    parts.append(b"]")
    if call.stream:
        parts.append(b',"stream":true')
    if call.user is not None:
        parts += (b',"user":', msgspec.json.encode(call.user))
    parts.append(b"}")
    return b"".join(parts)
