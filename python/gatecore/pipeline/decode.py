"""The decode stages: the client's body → the policy fields the stages read, per inbound API.

OpenAI routes decode their fields with msgspec (the body itself is forwarded as it is); an Anthropic
Messages request is translated into the hub format first (translate/), its answers translated back by
the encoder it leaves on the context.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from gatecore.errors import InvalidRequest
from gatecore.prompts.chat_field import PROMPT_MARK
from gatecore.request import CHAT, RequestContext
from gatecore.routing.capabilities import IMAGE_PART, chat_needs, translated_needs
from gatecore.translate.anthropic_request_to_hub import translate_messages_request
from gatecore.translate.hub_stream_to_anthropic import AnthropicEncoder

# Bounds of the numbers limits and budgets count with (OpenAI's own `n` bound is 128).
MAX_OUTPUT_TOKENS = 100_000_000
MAX_CHOICES = 128
MAX_MODEL_CHARS = 256
_AT_PATH = re.compile(r" - at `\$\.?([^`]{0,200})`$")


def bounded_model(name: str) -> str:
    """The client's model name, which the ledger, the metrics and errors keep: 1-256 characters,
    none of them a control character (400 otherwise)."""
    if not 0 < len(name) <= MAX_MODEL_CHARS or not name.isprintable():
        raise InvalidRequest(
            f"'model' must be 1-{MAX_MODEL_CHARS} printable characters.", code="invalid_value", param="model"
        )
    return name


class DecodeOpenAI:
    """An OpenAI route's decode stage: its policy fields (400 with a precise reason otherwise)."""

    __slots__ = ("decoder",)

    def __init__(self, decoder: msgspec.json.Decoder[Any]):
        self.decoder = decoder

    def __call__(self, ctx: RequestContext) -> None:
        decode_fields(ctx, self.decoder)


class DecodeChat(DecodeOpenAI):
    """The chat route's decode stage: its policy fields, or first the stored prompt the body names
    (`"prompt": {...}`, prompts/chat_field.py). A body without the word pays one byte search, in
    this stage's own call: a wrapper stage around the decoder cost 3.6k instructions a request."""

    __slots__ = ("prompt_call",)

    def __init__(
        self,
        decoder: msgspec.json.Decoder[Any],
        prompt_call: Callable[[RequestContext], Awaitable[None] | None],
    ):
        super().__init__(decoder)
        self.prompt_call = prompt_call

    def __call__(self, ctx: RequestContext) -> Awaitable[None] | None:  # type: ignore[override]
        if PROMPT_MARK in ctx.body:
            waits = self.prompt_call(ctx)
            if waits is not None:
                return waits
        decode_fields(ctx, self.decoder)
        return None


def decode_messages(ctx: RequestContext) -> None:
    """`POST /v1/messages`'s decode stage: an Anthropic request, served through the hub format."""
    request = translate_messages_request(ctx, ctx.body)
    bounded_model(ctx.client_model)
    ctx.needs = translated_needs(ctx.body, bool(request.tools))
    thinking = request.thinking is not None and request.thinking.type != "disabled"
    stop_sequences = tuple(request.stop_sequences or ())
    ctx.encoder = AnthropicEncoder(ctx.client_model, ctx.request_id, stop_sequences, thinking, ctx.stream)


def decode_fields(ctx: RequestContext, decoder: msgspec.json.Decoder[Any]) -> Any:
    """Decode the policy fields of `ctx.body` into the context and return them; 400 with a precise
    reason otherwise."""
    if not ctx.body:
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        fields = decoder.decode(ctx.body)
    except msgspec.ValidationError as exc:
        if not _is_json(ctx.body):  # a missing field is reported before trailing garbage otherwise
            raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None
        raise _validation_error(str(exc)) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply.", code="invalid_json") from None
    ctx.client_model = bounded_model(fields.model)
    stream = getattr(fields, "stream", None)
    if stream:
        if not ctx.endpoint.streams:
            raise InvalidRequest("This endpoint does not stream.", param="stream")
        ctx.stream = True
        options = fields.stream_options
        ctx.include_usage = bool(options is not None and options.include_usage)
    max_tokens = getattr(fields, "max_completion_tokens", None) or getattr(fields, "max_tokens", None)
    if max_tokens is not None:
        if not 1 <= max_tokens <= MAX_OUTPUT_TOKENS:  # limits and budgets count with it
            raise InvalidRequest(
                f"'max_tokens' must be between 1 and {MAX_OUTPUT_TOKENS}.",
                code="invalid_value",
                param="max_tokens",
            )
        ctx.max_tokens = max_tokens
    n = getattr(fields, "n", None)
    if n is not None:
        if not 1 <= n <= MAX_CHOICES:
            raise InvalidRequest(f"'n' must be between 1 and {MAX_CHOICES}.", code="invalid_value", param="n")
        ctx.choices = n
    if ctx.endpoint is CHAT and (
        fields.tools or fields.functions or fields.response_format is not None or IMAGE_PART in ctx.body
    ):
        ctx.needs = chat_needs(fields, ctx.body)  # most requests need nothing: no call for them
    return fields


def _is_json(body: bytes) -> bool:
    try:
        msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return False
    return True


def _validation_error(message: str) -> InvalidRequest:
    if message.startswith("Expected `object`"):
        return InvalidRequest("The request body must be a JSON object.", code="invalid_body")
    if "required field `model`" in message:
        return InvalidRequest("The request needs a 'model' field.", code="missing_model", param="model")
    if message.startswith("Object missing required field `"):
        field = message.split("`")[1]
        return InvalidRequest(f"The request needs a '{field}' field.", code="invalid_body", param=field)
    match = _AT_PATH.search(message)
    param = match.group(1) if match else None
    if param == "model":
        return InvalidRequest("'model' must be a string.", code="missing_model", param="model")
    reason = message[: match.start()] if match else message
    where = f" at '{param}'" if param else ""
    return InvalidRequest(f"Invalid request body{where}: {reason[:200]}.", code="invalid_body", param=param)
