"""`POST /v1/responses`'s decode stage: a Responses request, served through the hub format.

The request is translated into a chat request in `ctx.body` (translate/responses_request_to_hub.py)
and a `ResponsesEncoder` is left on the context to translate the answer back. The client's own bytes
are kept in `ctx.native_body`: a provider that speaks Responses natively sends them instead (only
`model` rewritten), and the encoder then relays its Responses answer as it is.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import msgspec
import orjson

from gatecore.api.responses import ResponsesRequest, TextFormat
from gatecore.errors import InvalidRequest, NotFound
from gatecore.pipeline.decode import MAX_OUTPUT_TOKENS, bounded_model
from gatecore.pipeline.responses_prompt import render_prompt
from gatecore.prompts.stage import PromptStage
from gatecore.request import RequestContext
from gatecore.routing.capabilities import JSON_SCHEMA, TOOLS, VISION
from gatecore.stored_responses import ResponseStore, owner_of
from gatecore.translate.hub_response_to_responses import ResponseShape
from gatecore.translate.hub_stream_to_responses import ResponsesEncoder
from gatecore.translate.responses_request_to_hub import (
    HubRequest,
    decode_responses_request,
    hub_request,
    input_items,
)

_any = msgspec.json.Decoder()
MAX_ID_CHARS = 200


class ResponsesRequestState:
    """What the later Responses stages need of the decoded request (on the encoder): the translation,
    and the items replayed before it (`previous_response_id`) for the stored-responses recorder."""

    __slots__ = ("history", "hub", "store")

    def __init__(self, hub: HubRequest, history: list[Any], store: bool):
        self.hub = hub
        self.history = history
        self.store = store


class DecodeResponses:
    """The decode stage of `/v1/responses`: synchronous unless the request continues a stored
    response (`previous_response_id`), which is read from the store first."""

    __slots__ = ("prompts", "responses")

    def __init__(self, responses: ResponseStore, prompts: PromptStage | None = None):
        self.responses = responses
        self.prompts = prompts  # a stored prompt named by `prompt` (pipeline/responses_prompt.py)

    def __call__(self, ctx: RequestContext) -> Awaitable[None] | None:
        request, members = decode_responses_request(ctx.body)
        prompt = members.get("prompt")
        if prompt is not None and bytes(prompt) != b"null" and self.prompts is not None:
            return self._with_prompt(ctx, request, members)
        previous = request.previous_response_id
        if previous is None:
            translate_into(ctx, request, members, [])
            return None
        return self._continue(ctx, request, members, previous)

    async def _with_prompt(
        self, ctx: RequestContext, request: ResponsesRequest, members: dict[str, msgspec.Raw]
    ) -> None:
        assert self.prompts is not None
        await render_prompt(ctx, self.prompts, request, members)
        waits = self(ctx)  # the rewritten request, without its `prompt`
        if waits is not None:
            await waits

    async def _continue(
        self, ctx: RequestContext, request: ResponsesRequest, members: dict[str, msgspec.Raw], previous: str
    ) -> None:
        if not 0 < len(previous) <= MAX_ID_CHARS or not previous.isprintable():
            raise InvalidRequest(
                f"previous_response_id: must be 1-{MAX_ID_CHARS} printable characters.",
                param="previous_response_id",
            )
        stored = await self.responses.get(owner_of(ctx.key), previous)
        if stored is None:
            raise NotFound(
                f"previous_response_id: no response with id '{previous[:80]}' was found.",
                param="previous_response_id",
            )
        history = stored.conversation()
        translate_into(ctx, request, members, history)
        # An upstream speaking Responses gets the conversation itself: it may not know the id.
        given = input_items(request)
        rest = {name: raw for name, raw in members.items() if name not in ("previous_response_id", "input")}
        ctx.native_body = msgspec.json.encode({**rest, "input": [*history, *given]})


def translate_into(
    ctx: RequestContext, request: ResponsesRequest, members: dict[str, msgspec.Raw], history: list[Any]
) -> None:
    """Translate the client's Responses request, continuing the replayed `history` items, into the hub
    format on `ctx`, and leave the encoder of its answer there."""
    client_body = ctx.body
    if request.model is None:
        raise InvalidRequest("The request needs a 'model' field.", code="missing_model", param="model")
    ctx.client_model = bounded_model(request.model)
    if request.max_output_tokens is not None:
        if not 16 <= request.max_output_tokens <= MAX_OUTPUT_TOKENS:  # the reference's lower bound
            raise InvalidRequest(
                f"max_output_tokens: must be between 16 and {MAX_OUTPUT_TOKENS}.",
                code="invalid_value",
                param="max_output_tokens",
            )
        ctx.max_tokens = request.max_output_tokens
    items = input_items(request)
    hub = hub_request(request, members, history, items)
    ctx.stream = bool(request.stream)
    ctx.body = msgspec.json.encode(hub.doc)
    ctx.needs = (
        (TOOLS if "tools" in hub.doc else 0)
        | (VISION if hub.images else 0)
        | (JSON_SCHEMA if "response_format" in hub.doc else 0)
    )
    ctx.native_body = client_body
    shape = ResponseShape(ctx.client_model, request.previous_response_id, lambda: _echo(request, hub))
    encoder = ResponsesEncoder(shape, ctx.stream)
    encoder.state = ResponsesRequestState(hub, history, request.store is not False)
    ctx.encoder = encoder


def _echo(request: ResponsesRequest, hub: HubRequest) -> dict[str, Any]:
    """The request's options as every `response` object repeats them."""
    choice = request.tool_choice
    fmt = request.text.format if request.text is not None else None
    reasoning = request.reasoning
    return {
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "metadata": request.metadata or {},
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "reasoning": {
            "effort": reasoning.effort if reasoning else None,
            "summary": reasoning.summary if reasoning else None,
        },
        "store": request.store is not False,
        "temperature": request.temperature if request.temperature is not None else 1.0,
        "text": {"format": _format(fmt)},
        "tool_choice": "auto"
        if choice is None
        else choice
        if isinstance(choice, str)
        else msgspec.to_builtins(choice),
        "tools": [orjson.Fragment(bytes(raw)) for raw in hub.function_tools],  # as the client sent them
        "top_p": request.top_p if request.top_p is not None else 1.0,
        "truncation": "disabled",
        "user": request.user,
    }


def _format(fmt: TextFormat | None) -> dict[str, Any]:
    if fmt is None:
        return {"type": "text"}
    out: dict[str, Any] = {"type": fmt.type}
    if fmt.name is not None:
        out["name"] = fmt.name
    if fmt.schema:
        out["schema"] = _any.decode(fmt.schema)
    if fmt.description is not None:
        out["description"] = fmt.description
    if fmt.strict is not None:
        out["strict"] = fmt.strict
    return out
