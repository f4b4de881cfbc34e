"""OpenAI chat request → Anthropic Messages request (POST /v1/messages).

Mapping (Anthropic's API reference, "Messages"):
- system/developer messages → top-level `system` (joined with blank lines, wherever they appear);
- user/assistant turns → `messages`; consecutive turns of one role are merged into one, so tool
  results (role `tool` → `tool_result` blocks) of one assistant turn share one user turn;
- assistant `tool_calls` → `tool_use` blocks; images: data URL → base64 source, http(s) → url source;
- max_completion_tokens/max_tokens → max_tokens (required there: the provider's default_max_tokens
  when the client sent none); stop → stop_sequences; temperature, top_p passed as they are;
- tools → tools[{name, description, input_schema}]; tool_choice auto/none/required/function →
  auto/none/any/tool; parallel_tool_calls=false → disable_parallel_tool_use; user → metadata.user_id;
- response_format json_schema/json_object → one forced tool whose input is the JSON answer (the
  decoders hand its input back as the message text with finish_reason "stop");
- reasoning_effort → extended thinking (`thinking.budget_tokens`: minimal/low 1024, medium 4096, high
  16384, within max_tokens), when the request can carry it: Anthropic refuses thinking beside a set
  temperature or top_k, a forced tool (response_format's JSON tool included), fewer than 1025
  max_tokens, or an earlier assistant tool call without its signed thinking block (a client of
  another API has none to send back). Otherwise the hint is dropped, like an engine without
  reasoning ignores it;
- n>1, logprobs, logit_bias, seed, penalties and audio → 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from gatecore.errors import InvalidRequest
from gatecore.providers.from_hub_request import (
    NO_LOGPROBS_AUDIO_PREDICTION,
    NO_OPENAI_EXTRAS,
    NO_SEED_OR_PENALTIES,
    JsonObject,
    arguments_of,
    content_parts,
    functions_of,
    image_url_of,
    max_tokens_of,
    messages_of,
    n_of,
    reject_set,
    response_format_of,
    stop_sequences_of,
    text_of,
    tool_choice_of,
    untranslatable,
)

PROVIDER = "anthropic"
# The forced tool standing for response_format (its input is the JSON answer).
JSON_TOOL = "json_response"

_UNSUPPORTED: dict[str, tuple[object, ...]] = {
    **NO_LOGPROBS_AUDIO_PREDICTION,
    **{name: values for name, values in NO_OPENAI_EXTRAS.items() if name != "reasoning_effort"},
    **NO_SEED_OR_PENALTIES,
}
# reasoning_effort → thinking.budget_tokens (Anthropic's least is 1024), the inverse of the Anthropic
# route's budget → effort mapping (translate/anthropic_request_to_hub.py).
_THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
_LEAST_BUDGET = 1024


def anthropic_request(
    doc: JsonObject,
    model: str,
    default_max_tokens: int,
    stream: bool,
    thinking: dict[int, list[dict[str, str]]] | None = None,
) -> tuple[JsonObject, bool]:
    """The Anthropic request for `doc`, and whether response_format became the forced JSON tool.
    `thinking`: an Anthropic client's signed thinking blocks, by the place of their assistant message
    among the request's, put back at the start of that turn."""
    n_of(doc, PROVIDER)
    reject_set(doc, PROVIDER, _UNSUPPORTED)
    system, messages = _messages(messages_of(doc), thinking or {})
    out: JsonObject = {"model": model, "max_tokens": max_tokens_of(doc) or default_max_tokens}
    if system:
        out["system"] = system
    out["messages"] = messages
    stop = stop_sequences_of(doc)
    if stop:
        out["stop_sequences"] = stop
    for field in ("temperature", "top_p", "top_k"):
        if doc.get(field) is not None:
            out[field] = doc[field]
    user = doc.get("user")
    if isinstance(user, str):
        out["metadata"] = {"user_id": user}
    json_tool = _tools(doc, out)
    if thinking is None:  # an Anthropic client's own `thinking` is sent as it is by the provider
        _thinking_from_effort(doc, out)
    if stream:
        out["stream"] = True
    return out, json_tool


def _thinking_from_effort(doc: JsonObject, out: JsonObject) -> None:
    effort = doc.get("reasoning_effort")
    if effort is None or effort == "none":
        return
    budget = _THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        raise InvalidRequest(
            f"'reasoning_effort' must be one of none, {', '.join(_THINKING_BUDGETS)}.",
            code="invalid_value",
            param="reasoning_effort",
        )
    max_tokens = out["max_tokens"]
    forced = isinstance(out.get("tool_choice"), dict) and out["tool_choice"].get("type") in ("any", "tool")
    unsigned_tool_turn = any(
        turn["role"] == "assistant"
        and any(b.get("type") == "tool_use" for b in turn["content"])
        and turn["content"][0].get("type") not in ("thinking", "redacted_thinking")
        for turn in out["messages"]
    )
    temperature = out.get("temperature")
    if (
        forced
        or unsigned_tool_turn
        or max_tokens <= _LEAST_BUDGET
        or (temperature is not None and temperature != 1)
        or out.get("top_k") is not None
    ):
        return  # a hint the request cannot carry (see the module doc)
    out["thinking"] = {"type": "enabled", "budget_tokens": min(budget, max_tokens - 1)}


def _tools(doc: JsonObject, out: JsonObject) -> bool:
    functions = functions_of(doc)
    kind, schema, _ = response_format_of(doc)
    if kind != "text":
        if functions:
            raise untranslatable("response_format", PROVIDER, "JSON output cannot be combined with tools")
        out["tools"] = [
            {
                "name": JSON_TOOL,
                "description": "Give the answer as this tool's input: a JSON object.",
                "input_schema": schema or {"type": "object"},
            }
        ]
        out["tool_choice"] = {"type": "tool", "name": JSON_TOOL}
        return True
    if functions:
        tools = []
        for function in functions:
            tool: JsonObject = {
                "name": function["name"],
                "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
            }
            if isinstance(function.get("description"), str):
                tool["description"] = function["description"]
            tools.append(tool)
        out["tools"] = tools
    choice = tool_choice_of(doc)
    mapped: JsonObject | None = None
    if choice is not None:
        kind_, name = choice
        mapped = (
            {"type": "tool", "name": name}
            if kind_ == "function"
            else {"type": {"auto": "auto", "none": "none", "required": "any"}[kind_]}
        )
    if doc.get("parallel_tool_calls") is False and functions:
        mapped = mapped or {"type": "auto"}
        if mapped["type"] != "none":
            mapped["disable_parallel_tool_use"] = True
    if mapped is not None and functions:
        out["tool_choice"] = mapped
    return False


def _messages(
    messages: list[JsonObject], thinking: dict[int, list[dict[str, str]]]
) -> tuple[str, list[JsonObject]]:
    system: list[str] = []
    turns: list[JsonObject] = []
    assistants = 0
    for i, message in enumerate(messages):
        role = message["role"]
        param = f"messages[{i}]"
        if role in ("system", "developer"):
            system.append(text_of(message.get("content"), f"{param}.content"))
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), f"{param}.content")
        elif role == "assistant":
            blocks = _assistant_blocks(message, param)
            signed = thinking.get(assistants)
            assistants += 1
            if signed and blocks:
                blocks = [*signed, *blocks]
            if not blocks:
                continue  # an empty assistant turn: Anthropic rejects empty content
        elif role == "tool":
            blocks = [_tool_result(message, param)]
            role = "user"
        else:
            raise InvalidRequest(f"{param}.role '{role}' is not supported.", param=f"{param}.role")
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise InvalidRequest("The request needs at least one user or assistant message.", param="messages")
    return "\n\n".join(s for s in system if s), turns


def _user_blocks(content: Any, param: str) -> list[JsonObject]:
    blocks = []
    for j, part in enumerate(content_parts(content, param)):
        kind = part["type"]
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise InvalidRequest(f"{param}[{j}].text must be a string.", param=f"{param}[{j}].text")
            blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image(part, f"{param}[{j}]"))
        else:
            raise untranslatable(f"{param}[{j}].type", PROVIDER, f"content part '{kind[:40]}'")
    return blocks


def _image(part: JsonObject, param: str) -> JsonObject:
    source = image_url_of(part, param)
    if isinstance(source, tuple):
        media_type, data = source
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": source}}


def _assistant_blocks(message: JsonObject, param: str) -> list[JsonObject]:
    blocks: list[JsonObject] = []
    content = message.get("content")
    for j, part in enumerate(content_parts(content, f"{param}.content")):
        if part["type"] == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                blocks.append({"type": "text", "text": part["text"]})
        elif part["type"] != "refusal":
            raise untranslatable(f"{param}.content[{j}].type", PROVIDER)
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise InvalidRequest(f"{param}.tool_calls must be an array.", param=f"{param}.tool_calls")
    for k, call in enumerate(calls):
        call_id, name, arguments = arguments_of(call, f"{param}.tool_calls[{k}]")
        blocks.append({"type": "tool_use", "id": call_id, "name": name, "input": arguments})
    return blocks


def _tool_result(message: JsonObject, param: str) -> JsonObject:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise InvalidRequest(f"{param}.tool_call_id must be a string.", param=f"{param}.tool_call_id")
    content = message.get("content")
    result: JsonObject = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, list):
        result["content"] = _user_blocks(content, f"{param}.content")
    else:
        result["content"] = text_of(content, f"{param}.content")
    return result
