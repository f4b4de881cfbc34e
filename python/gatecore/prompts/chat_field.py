"""A stored prompt from the chat API: `POST /v1/chat/completions` with `"prompt": {"id": NAME,
"version": N | "label": L, "variables": {...}}` runs that prompt like `POST /v1/prompts/{name}`
(the Responses API's `prompt` parameter, on chat). The request's `messages` (user and assistant)
follow the rendered ones; `stream`, `user` and the prompt's overridable parameters apply; a `model`,
if sent, must be the prompt's.

A chat request without the member pays one byte search of its body: only a body holding `"prompt"`
is decoded here (a false hit, the word in a message, is decoded and passed on).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from gatecore.errors import InvalidRequest, StoreUnavailable
from gatecore.prompts.call import CallBody, ExtraMessage
from gatecore.prompts.spec import NAME_PATTERN
from gatecore.prompts.stage import PromptStage
from gatecore.request import RequestContext
from gatecore.request.prompt_ref import PromptRef

_MARK = b'"prompt"'
_OWN = frozenset(("prompt", "model", "messages", "stream", "stream_options", "user"))


class PromptField(msgspec.Struct, forbid_unknown_fields=True):
    id: Annotated[str, Meta(pattern=NAME_PATTERN)]
    version: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None
    label: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    variables: dict[str, Any] | None = None


PROMPT_MARK = _MARK  # what the chat decoder looks for in a body before calling `prompt_call`


class ChatWithPrompt:
    """A chat request that names a stored prompt: its rendering, before the chat decoder runs on the
    rendered body (pipeline/decode_chat.py calls it when the body holds `PROMPT_MARK`)."""

    __slots__ = ("prompts",)

    def __init__(self, prompts: PromptStage):
        self.prompts = prompts

    def prompt_call(self, ctx: RequestContext) -> Awaitable[None] | None:
        """The rendering of the prompt the body names (an awaitable), or None when it names none (the
        word in a message): then the chat decoder decodes the body as it is."""
        try:
            raw = msgspec.json.decode(ctx.body)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return None  # the chat decoder says what is wrong with it
        if isinstance(raw, dict) and "prompt" in raw:
            return self._prompt(ctx, raw)
        return None

    async def _prompt(self, ctx: RequestContext, raw: dict[str, Any]) -> None:
        catalog = self.prompts.catalog
        if catalog is None:
            raise StoreUnavailable("Prompts are unavailable: the store could not be opened.")
        try:
            field = msgspec.convert(raw["prompt"], PromptField)
            messages = msgspec.convert(raw.get("messages") or [], list[ExtraMessage])
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"Invalid 'prompt': {str(exc)[:200]}.", param="prompt") from None
        if field.version is not None and field.label is not None:
            raise InvalidRequest("Give the prompt's 'version' or its 'label', not both.", param="prompt")
        stream = raw.get("stream") is True
        user = raw.get("user")
        if user is not None and (not isinstance(user, str) or len(user) > 256):
            raise InvalidRequest("'user' must be a string of at most 256 characters.", param="user")
        call = CallBody(variables=field.variables, stream=stream, messages=messages, user=user)
        overrides = {k: v for k, v in raw.items() if k not in _OWN}
        ctx.prompt = PromptRef(field.id, field.label, field.version or 0)
        model = raw.get("model")
        await self.prompts.render(ctx, catalog, call, overrides)
        if model is not None and model != ctx.client_model:
            raise InvalidRequest(
                f"The prompt '{field.id}' runs on '{ctx.client_model}'; leave 'model' out or send that.",
                param="model",
            )
