"""Decoding an Anthropic Messages request body: the typed request, its top-level members as raw JSON,
and msgspec's validation messages worded as Anthropic words them (`<dotted.path>: <reason>`)."""

from __future__ import annotations

import re

import msgspec

from gatecore.api.anthropic import MessagesRequest
from gatecore.errors import InvalidRequest
from gatecore.request import RequestContext

_decoder = msgspec.json.Decoder(MessagesRequest)
_top_level = msgspec.json.Decoder(dict[str, msgspec.Raw])
_model_decoder = msgspec.json.Decoder(str)
_MAX_MODEL_CHARS = 256  # as pipeline/decode.py's bound on the model name
_AT_PATH = re.compile(r" - at `\$\.?([^`]{0,300})`$")
_INDEX = re.compile(r"\[(\d+)\]")


def decode_messages_request(
    body: bytes, ctx: RequestContext | None = None
) -> tuple[MessagesRequest, dict[str, msgspec.Raw]]:
    """The typed request and every top-level member as raw JSON; 400 naming the field otherwise.

    With `ctx`, the model the client asked for goes to `ctx.client_model` before the request is
    checked (when it is a string of at most 256 printable characters), so a 400 for another field is
    logged with it."""
    if not body:
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        members = _top_level.decode(body)
    except msgspec.ValidationError:
        raise InvalidRequest("The request body must be a JSON object.") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None
    if ctx is not None:
        ctx.client_model = _requested_model(members.get("model"))
    try:
        request = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise _validation_error(str(exc)) from None
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply.", code="invalid_json") from None
    return request, members


def _requested_model(raw: msgspec.Raw | None) -> str:
    if raw is None or len(raw) > 2 * _MAX_MODEL_CHARS:
        return ""
    try:
        model = _model_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ""
    return model if 0 < len(model) <= _MAX_MODEL_CHARS and model.isprintable() else ""


def _validation_error(message: str) -> InvalidRequest:
    """A msgspec validation message as Anthropic words it: `<dotted.path>: <reason>`."""
    match = _AT_PATH.search(message)
    path = _INDEX.sub(r".\1", match.group(1)) if match else ""
    reason = message[: match.start()] if match else message
    if reason.startswith("Object missing required field `"):
        field = reason.split("`")[1]
        path = f"{path}.{field}" if path else field
        return InvalidRequest(f"{path}: Field required.", param=path)
    if reason.startswith("Invalid value '") and path.endswith("type"):
        value = reason.split("'")[1][:60]
        return InvalidRequest(
            f"{path}: type '{value}' is not supported by gatecore's translation for this model.",
            param=path,
        )
    if not path:
        return InvalidRequest(f"Invalid request body: {reason[:200]}.")
    return InvalidRequest(f"{path}: {reason[:200]}.", param=path)
