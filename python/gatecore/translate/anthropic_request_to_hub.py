"""Anthropic Messages request → OpenAI chat request (the hub format), into `ctx.body`.

Every field either has an OpenAI counterpart, is a hint with no effect on the answer (ignored), or is
refused with a 400 naming it; nothing that changes the answer is dropped silently. Top-level fields this
module does not know pass through unchanged, as the OpenAI route forwards them (engine extras such as
vLLM's, or a test upstream's steering field).

Choices the hub format forces, documented in translate/README.md:
- `system` text blocks and multi-block assistant text are joined with a blank line / kept as parts;
- `tool_result` blocks become `role: tool` messages placed before the rest of their user turn (OpenAI
  wants them right after the assistant's tool calls); images inside a tool result move to that user
  message; `is_error` is kept as an "Error: " prefix of the result text;
- `thinking.budget_tokens` maps to `reasoning_effort`, and `output_config.effort` over it; thinking
  blocks are left out, as OpenAI-compatible reasoning APIs ask, and signed ones (an Anthropic model's)
  are kept for an Anthropic upstream (`ctx.anthropic_native`), which needs them back in tool loops;
- `role: "system"` entries of `messages` (Claude Code sends them) stay system messages where they are;
- `context_management`: `clear_thinking_*` edits are what gatecore does anyway (thinking never goes
  back upstream through the hub), so they are honoured by the translation; the request's
  `thinking`, `output_config` and `context_management` also go, as sent, to `ctx.anthropic_native`
  for an Anthropic upstream (providers/anthropic.py), which gets them instead of their hub form.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gatecore.api.anthropic import (
    MESSAGES_FIELDS,
    ContentBlock,
    ImageBlock,
    MessagesRequest,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UrlSource,
)
from gatecore.errors import InvalidRequest
from gatecore.request import AnthropicNative, RequestContext
from gatecore.translate.anthropic_request_decode import decode_messages_request

# Anthropic-only hints with no effect on what a model answers.
_IGNORED = frozenset({"cache_control", "service_tier", "inference_geo", "speed", "anthropic_version"})
# Known Anthropic features no hub-format model can honour.
_REFUSED = {
    "container": "code-execution containers exist only on Anthropic's API",
    "mcp_servers": "Anthropic-hosted MCP connectors exist only on Anthropic's API",
}
# Members of the request an Anthropic upstream gets as the client sent them (ctx.anthropic_native).
_NATIVE = ("thinking", "output_config", "context_management")
# `output_config.effort` → `reasoning_effort` (the hub has nothing above "high").
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "high", "xhigh": "high"}
# `thinking.budget_tokens` up to these bounds → OpenAI's `reasoning_effort`.
_EFFORT_BOUNDS = ((4096, "low"), (16384, "medium"))


def translate_messages_request(ctx: RequestContext, body: bytes) -> MessagesRequest:
    """Decode an Anthropic request, check it, and put its OpenAI form in `ctx.body`.

    Also fills the policy fields (`client_model`, `stream`, `max_tokens`). Streams leave
    `stream_options.include_usage` to the provider, which adds it (and the relay hides that chunk and
    records its usage) unless the provider is configured not to.
    """
    request, members = decode_messages_request(body, ctx)
    if request.max_tokens is None:
        raise InvalidRequest("max_tokens: Field required.", param="max_tokens")
    if request.max_tokens < 1:
        raise InvalidRequest("max_tokens: must be at least 1.", param="max_tokens")
    signed: dict[int, list[dict[str, str]]] = {}
    doc = openai_chat_request(request, members, signed)
    native = {name: bytes(members[name]) for name in _NATIVE if name in members}
    ctx.anthropic_native = AnthropicNative(native, signed) if native or signed else None
    ctx.client_model = request.model
    ctx.stream = bool(request.stream)
    ctx.max_tokens = request.max_tokens
    ctx.body = msgspec.json.encode(doc)
    return request


def openai_chat_request(
    request: MessagesRequest,
    members: dict[str, msgspec.Raw],
    signed: dict[int, list[dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """The OpenAI chat request equivalent to `request` (a dict of JSON values and raw JSON); the
    signed thinking blocks of assistant turns go to `signed`, by the turn's place among them."""
    doc: dict[str, Any] = {"model": request.model, "messages": openai_messages(request, signed)}
    if request.max_tokens is not None:
        doc["max_tokens"] = request.max_tokens
    if request.stream:
        doc["stream"] = True
    if request.stop_sequences:
        doc["stop"] = request.stop_sequences
    if request.temperature is not None:
        doc["temperature"] = request.temperature
    if request.top_p is not None:
        doc["top_p"] = request.top_p
    if request.top_k is not None:
        doc["top_k"] = request.top_k  # not OpenAI's; vLLM, SGLang and others read it
    if request.metadata is not None and request.metadata.user_id is not None:
        doc["user"] = request.metadata.user_id
    if request.tools:
        doc["tools"] = _tools(request)
    if request.tool_choice is not None:
        _tool_choice(request, doc)
    if request.thinking is not None:
        _thinking(request, doc)
    if request.output_config is not None:
        _output_config(request, doc)
    if request.context_management is not None:
        _context_management(request)
    for name, raw in members.items():
        if name in MESSAGES_FIELDS or name in _IGNORED:
            continue
        reason = _REFUSED.get(name)
        if reason is not None:
            raise InvalidRequest(f"{name}: cannot be translated for this model: {reason}.", param=name)
        doc[name] = raw
    return doc


def openai_messages(
    request: MessagesRequest, signed: dict[int, list[dict[str, str]]] | None = None
) -> list[dict[str, Any]]:
    """`system` and `messages` as OpenAI chat messages (signed thinking blocks into `signed`)."""
    out: list[dict[str, Any]] = []
    system = request.system
    if isinstance(system, str):
        if system:
            out.append({"role": "system", "content": system})
    elif system:
        out.append({"role": "system", "content": "\n\n".join(block.text for block in system)})
    if not request.messages:
        raise InvalidRequest("messages: at least one message is required.", param="messages")
    assistants = 0
    for i, message in enumerate(request.messages):
        if message.role == "user":
            _user_turn(message.content, i, out)
        elif message.role == "assistant":
            thinking = _assistant_turn(message.content, i, out)
            if thinking and signed is not None:
                signed[assistants] = thinking
            assistants += 1
        elif message.role == "system":
            out.append({"role": "system", "content": _system_text(message.content, i)})
        else:
            raise InvalidRequest(
                f"messages.{i}.role: must be 'user', 'assistant' or 'system', not '{message.role[:40]}'.",
                param=f"messages.{i}.role",
            )
    return out


def _system_text(content: str | list[ContentBlock], i: int) -> str:
    """A system entry of `messages`: its text blocks joined like the top-level `system`'s."""
    if isinstance(content, str):
        return content
    texts = []
    for j, block in enumerate(content):
        if not isinstance(block, TextBlock):
            raise _misplaced(block, "system", i, j)
        texts.append(block.text)
    return "\n\n".join(texts)


def _user_turn(content: str | list[ContentBlock], i: int, out: list[dict[str, Any]]) -> None:
    if isinstance(content, str):
        out.append({"role": "user", "content": content})
        return
    parts: list[dict[str, Any]] = []
    tool_messages = 0
    for j, block in enumerate(content):
        if isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            parts.append(_image_part(block))
        elif isinstance(block, ToolResultBlock):
            out.append(_tool_message(block, parts))
            tool_messages += 1
        else:
            raise _misplaced(block, "user", i, j)
    if parts or not tool_messages:
        out.append({"role": "user", "content": _text_or_parts(parts)})


def _tool_message(block: ToolResultBlock, user_parts: list[dict[str, Any]]) -> dict[str, Any]:
    content = block.content
    if isinstance(content, str):
        text = content
    else:
        texts = []
        for part in content:
            if isinstance(part, TextBlock):
                texts.append(part.text)
            else:  # OpenAI tool messages carry text only: the image goes with the user turn
                user_parts.append(_image_part(part))
        text = "\n".join(texts)
    if block.is_error:
        text = "Error: " + text
    return {"role": "tool", "tool_call_id": block.tool_use_id, "content": text}


def _assistant_turn(
    content: str | list[ContentBlock], i: int, out: list[dict[str, Any]]
) -> list[dict[str, str]]:
    """The turn as one assistant message onto `out`; its signed thinking blocks are returned."""
    if isinstance(content, str):
        out.append({"role": "assistant", "content": content})
        return []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    thinking: list[dict[str, str]] = []
    for j, block in enumerate(content):
        if isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ToolUseBlock):
            arguments = bytes(block.input).decode()
            function = {"name": block.name, "arguments": arguments}
            calls.append({"id": block.id, "type": "function", "function": function})
        elif isinstance(block, ThinkingBlock):
            # Reasoning is not sent back in the hub format, as OpenAI-compatible reasoning APIs ask;
            # a signed block (an Anthropic model's) is kept for an Anthropic upstream, which wants it.
            if block.signature:
                thinking.append(
                    {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
                )
        else:
            raise _misplaced(block, "assistant", i, j)
    message: dict[str, Any] = {"role": "assistant", "content": _text_or_parts(parts) if parts else None}
    if calls:
        message["tool_calls"] = calls
    elif not parts:
        message["content"] = ""
    out.append(message)
    return thinking


def _text_or_parts(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    # One text block is sent as a plain string: every OpenAI-compatible engine accepts that.
    if len(parts) == 1 and parts[0]["type"] == "text":
        text: str = parts[0]["text"]
        return text
    return parts


def _image_part(block: ImageBlock) -> dict[str, Any]:
    source = block.source
    url = source.url if isinstance(source, UrlSource) else f"data:{source.media_type};base64,{source.data}"
    return {"type": "image_url", "image_url": {"url": url}}


def _misplaced(block: ContentBlock, role: str, i: int, j: int) -> InvalidRequest:
    kind = type(block).__struct_config__.tag
    return InvalidRequest(
        f"messages.{i}.content.{j}: a '{kind}' block cannot appear in a {role} turn.",
        param=f"messages.{i}.content.{j}",
    )


def _tools(request: MessagesRequest) -> list[dict[str, Any]]:
    assert request.tools is not None
    tools = []
    for i, tool in enumerate(request.tools):
        if tool.type not in (None, "custom"):
            raise InvalidRequest(
                f"tools.{i}.type: the server tool '{tool.type[:60]}' runs only on Anthropic's API.",
                param=f"tools.{i}.type",
            )
        if not tool.input_schema:
            raise InvalidRequest(f"tools.{i}.input_schema: Field required.", param=f"tools.{i}.input_schema")
        function: dict[str, Any] = {"name": tool.name}
        if tool.description is not None:
            function["description"] = tool.description
        function["parameters"] = tool.input_schema
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(request: MessagesRequest, doc: dict[str, Any]) -> None:
    choice = request.tool_choice
    assert choice is not None
    if choice.type == "auto":
        doc["tool_choice"] = "auto"
    elif choice.type == "any":
        doc["tool_choice"] = "required"
    elif choice.type == "none":
        doc["tool_choice"] = "none"
    elif choice.type == "tool":
        if not choice.name:
            raise InvalidRequest("tool_choice.name: Field required.", param="tool_choice.name")
        doc["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    else:
        raise InvalidRequest(
            f"tool_choice.type: must be 'auto', 'any', 'tool' or 'none', not '{choice.type[:40]}'.",
            param="tool_choice.type",
        )
    if choice.disable_parallel_tool_use and request.tools:
        doc["parallel_tool_calls"] = False


def _thinking(request: MessagesRequest, doc: dict[str, Any]) -> None:
    thinking = request.thinking
    assert thinking is not None
    if thinking.type == "enabled":
        budget = thinking.budget_tokens
        if budget is None:
            raise InvalidRequest("thinking.budget_tokens: Field required.", param="thinking.budget_tokens")
        doc["reasoning_effort"] = next((e for bound, e in _EFFORT_BOUNDS if budget < bound), "high")
    elif thinking.type not in ("disabled", "adaptive"):  # adaptive: the model decides, as by default
        raise InvalidRequest(
            f"thinking.type: must be 'enabled', 'adaptive' or 'disabled', not '{thinking.type[:40]}'.",
            param="thinking.type",
        )


def _output_config(request: MessagesRequest, doc: dict[str, Any]) -> None:
    config = request.output_config
    assert config is not None
    if config.effort is not None:
        effort = _EFFORTS.get(config.effort)
        if effort is None:
            raise InvalidRequest(
                f"output_config.effort: must be one of {', '.join(_EFFORTS)}, not '{config.effort[:40]}'.",
                param="output_config.effort",
            )
        doc["reasoning_effort"] = effort
    if config.format is not None:
        doc["response_format"] = _response_format(config.format)


def _response_format(fmt: dict[str, msgspec.Raw]) -> dict[str, Any]:
    """`output_config.format` (`{"type": "json_schema", "schema": {...}}`) as OpenAI's JSON schema
    `response_format`."""
    kind = fmt.get("type")
    schema = fmt.get("schema")
    if kind is None or bytes(kind) != b'"json_schema"' or schema is None:
        raise InvalidRequest(
            "output_config.format: only {'type': 'json_schema', 'schema': {...}} can be translated.",
            param="output_config.format",
        )
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def _context_management(request: MessagesRequest) -> None:
    """Check the edits. Clearing thinking is what the hub translation does anyway; the other edits
    (clearing old tool results) only save context, so a hub-format model goes without them and an
    Anthropic upstream gets them as sent (ctx.anthropic_native)."""
    config = request.context_management
    assert config is not None
    for i, edit in enumerate(config.edits):
        if not edit.type or len(edit.type) > 100:
            raise InvalidRequest(
                f"context_management.edits.{i}.type: must be 1-100 characters.",
                param=f"context_management.edits.{i}.type",
            )
