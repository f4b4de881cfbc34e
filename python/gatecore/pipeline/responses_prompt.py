"""The Responses API's `prompt` parameter on gatecore's stored prompts (prompts/): `{"id": <a prompt's
name>, "version": "2", "variables": {...}}` renders that prompt's messages ahead of the request's
`input`, and the request goes on as if the client had sent them (translated, or passed through to a
native upstream without the `prompt` member, which would name a prompt only gatecore has).

Variables are strings, or `input_text` parts (their text); the prompt's model is the request's when
it names none (another one is a 400, as on the chat API's `prompt`). The ledger, metrics and
guardrails see the prompt and version like a published call.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from gatecore.api.responses import ResponsesRequest
from gatecore.errors import InvalidRequest
from gatecore.prompts.spec import NAME_PATTERN
from gatecore.prompts.stage import PromptStage
from gatecore.request import RequestContext
from gatecore.request.prompt_ref import PromptRef
from gatecore.translate.responses_request_to_hub import input_items

_ROLES = frozenset(("system", "developer", "user", "assistant"))


class ResponsesPrompt(msgspec.Struct, forbid_unknown_fields=True):
    id: Annotated[str, Meta(pattern=NAME_PATTERN)]
    version: (
        Annotated[str, Meta(pattern=r"^[0-9]{1,7}$")] | Annotated[int, Meta(ge=1, le=1_000_000)] | None
    ) = None
    variables: dict[str, Any] | None = None


async def render_prompt(
    ctx: RequestContext, prompts: PromptStage, request: ResponsesRequest, members: dict[str, msgspec.Raw]
) -> None:
    """Rewrite `ctx.body` (a Responses request with a `prompt`, decoded as `request` and its raw
    `members`) into one whose `input` starts with the stored prompt's rendered messages; 400 / 404
    in OpenAI's shape naming the field otherwise."""
    try:
        field = msgspec.json.decode(members["prompt"], type=ResponsesPrompt)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"prompt: {str(exc)[:200]}.", param="prompt") from None
    variables = {name: _text(name, value) for name, value in (field.variables or {}).items()}
    ref = PromptRef(field.id, None, int(field.version) if field.version is not None else 0)
    # A split label's pick is sticky per `user` (or its successor `safety_identifier`) when asked.
    user = request.user if request.user is not None else request.safety_identifier
    compiled, messages = await prompts.rendered(ctx, ref, variables, user)
    for message in messages:
        if message["role"] not in _ROLES:
            raise InvalidRequest(
                f"prompt: the prompt '{field.id}' has a '{message['role']}' message, which the Responses "
                "API cannot take as input.",
                param="prompt.id",
            )
    model = request.model
    if model is not None and model != compiled.spec.model:
        raise InvalidRequest(
            f"The prompt '{field.id}' runs on '{compiled.spec.model}'; leave 'model' out or send that.",
            param="model",
        )
    # The other members as the client sent them (raw), like a continued conversation's body.
    body: dict[str, Any] = {k: raw for k, raw in members.items() if k not in ("prompt", "model", "input")}
    body["model"] = compiled.spec.model
    body["input"] = [*messages, *(input_items(request) if request.input is not None else [])]
    ctx.body = msgspec.json.encode(body)


def _text(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("type") == "input_text" and isinstance(value.get("text"), str):
        return str(value["text"])
    raise InvalidRequest(
        f"prompt.variables.{name[:60]}: must be a string or an input_text part.",
        param=f"prompt.variables.{name[:60]}",
    )
