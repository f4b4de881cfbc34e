"""Reading the request body within the size limit, and decoding the fields policy needs."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from granian._granian import RSGIProtocolClosed as ProtocolClosed

from gatecore.errors import BodyTooLarge, InvalidRequest
from gatecore.request import CHAT, RequestContext
from gatecore.routing.capabilities import IMAGE_PART, chat_needs

_AT_PATH = re.compile(r" - at `\$\.?([^`]{0,200})`$")


async def read_body(headers: Any, proto: Any, limit: int) -> bytes:
    """The whole request body; 413 as soon as it is known to exceed `limit` bytes."""
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("Invalid Content-Length header.", code="invalid_header")
        if int(declared) > limit:
            raise BodyTooLarge(f"The request body is larger than the limit of {limit} bytes.")
        try:
            body: bytes = await proto()
        except ProtocolClosed:
            raise _incomplete() from None
        return body
    # No length given (chunked upload): read piece by piece and stop at the limit.
    parts: list[bytes] = []
    size = 0
    try:
        async for part in proto:
            size += len(part)
            if size > limit:
                raise BodyTooLarge(f"The request body is larger than the limit of {limit} bytes.")
            parts.append(part)
    except ProtocolClosed:
        raise _incomplete() from None
    return b"".join(parts)


def decode_fields(ctx: RequestContext, decoder: msgspec.json.Decoder[Any]) -> None:
    """Decode the policy fields of `ctx.body` into the context; 400 with a precise reason otherwise."""
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
    ctx.client_model = fields.model
    stream = getattr(fields, "stream", None)
    if stream:
        if not ctx.endpoint.streams:
            raise InvalidRequest("This endpoint does not stream.", param="stream")
        ctx.stream = True
        options = fields.stream_options
        ctx.include_usage = bool(options is not None and options.include_usage)
    ctx.max_tokens = getattr(fields, "max_completion_tokens", None) or getattr(fields, "max_tokens", None)
    if ctx.endpoint is CHAT and (
        fields.tools or fields.functions or fields.response_format is not None or IMAGE_PART in ctx.body
    ):
        ctx.needs = chat_needs(fields, ctx.body)  # most requests need nothing: no call for them


def _incomplete() -> InvalidRequest:
    # The client stopped sending before the end of its body; if it still listens, it gets this 400.
    return InvalidRequest("The request body ended before its declared length.", code="incomplete_body")


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
