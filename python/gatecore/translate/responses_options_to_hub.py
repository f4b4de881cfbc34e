"""Responses request → chat, the request-wide options: function tools (built-in tools dropped and
named), tool_choice and text.format; and the field-path errors both halves of the translation raise.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from gatecore.api.responses import Tool
from gatecore.errors import InvalidRequest

MAX_TOOLS = 512
_AT_PATH = re.compile(r" - at `\$\.?([^`]{0,300})`$")


class ToolHead(msgspec.Struct):
    type: str = ""
    name: str | None = None


_tool = msgspec.json.Decoder(Tool)
_tool_head = msgspec.json.Decoder(ToolHead)


def need(value: Any, path: str, field: str) -> Any:
    """`value`, or a 400 naming `<path>.<field>` as required when it is None."""
    if value is None:
        where = f"{path}.{field}"
        raise InvalidRequest(f"{where}: Field required.", code="missing_required_parameter", param=where)
    return value


def _decode(decoder: msgspec.json.Decoder[Any], raw: bytes, path: str) -> Any:
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise validation_error(str(exc), path) from None


def tools_to_chat(
    raws: list[msgspec.Raw], dropped: list[str], kept: list[msgspec.Raw]
) -> list[dict[str, Any]]:
    """The function tools in chat's shape; the others are named in `dropped`, the kept ones' raw
    JSON appended to `kept`."""
    if len(raws) > MAX_TOOLS:
        raise InvalidRequest(f"tools: at most {MAX_TOOLS} tools are accepted.", param="tools")
    tools = []
    for i, raw in enumerate(raws):
        path = f"tools[{i}]"
        try:
            tool = _tool.decode(raw)
        except msgspec.ValidationError as exc:
            head = _decode(_tool_head, raw, path)  # a built-in tool's own fields need not fit
            if head.type == "function":
                raise validation_error(str(exc), path) from None
            dropped.append(_dropped(i, head.type, head.name))
            continue
        if tool.type != "function":
            dropped.append(_dropped(i, tool.type, tool.name))
            continue
        kept.append(raw)
        function: dict[str, Any] = {"name": need(tool.name, path, "name")}
        if tool.description is not None:
            function["description"] = tool.description
        function["parameters"] = tool.parameters if tool.parameters else {"type": "object", "properties": {}}
        if tool.strict is not None:
            function["strict"] = tool.strict
        tools.append({"type": "function", "function": function})
    return tools


def _dropped(index: int, kind: str, name: str | None) -> str:
    kind = kind[:60] or "(none)"
    return f"{index}:{kind}:{name[:60]}" if name else f"{index}:{kind}"


def tool_choice_to_chat(choice: Any) -> Any:
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise InvalidRequest(
                f"tool_choice: must be 'auto', 'none' or 'required', not '{choice[:40]}'.",
                param="tool_choice",
            )
        return choice
    if choice.type == "function":
        if not choice.name:
            raise InvalidRequest("tool_choice.name: Field required.", param="tool_choice.name")
        return {"type": "function", "function": {"name": choice.name}}
    raise InvalidRequest(
        f"tool_choice.type: '{choice.type[:60]}' cannot be translated for this model.",
        param="tool_choice.type",
    )


def text_format_to_chat(fmt: Any, doc: dict[str, Any]) -> None:
    if fmt.type == "text":
        return
    if fmt.type == "json_object":
        doc["response_format"] = {"type": "json_object"}
        return
    if fmt.type != "json_schema":
        raise InvalidRequest(
            f"text.format.type: must be 'text', 'json_object' or 'json_schema', not '{fmt.type[:40]}'.",
            param="text.format.type",
        )
    if not fmt.name:
        raise InvalidRequest("text.format.name: Field required.", param="text.format.name")
    if not fmt.schema:
        raise InvalidRequest("text.format.schema: Field required.", param="text.format.schema")
    schema: dict[str, Any] = {"name": fmt.name, "schema": fmt.schema}
    if fmt.description is not None:
        schema["description"] = fmt.description
    if fmt.strict is not None:
        schema["strict"] = fmt.strict
    doc["response_format"] = {"type": "json_schema", "json_schema": schema}


def validation_error(message: str, prefix: str) -> InvalidRequest:
    """A msgspec validation message with the field's path: `<path>: <reason>`."""
    match = _AT_PATH.search(message)
    inner = match.group(1) if match else ""
    path = prefix + ("." + inner if prefix and inner and inner[0] != "[" else inner)
    reason = message[: match.start()] if match else message
    if reason.startswith("Object missing required field `"):
        field = reason.split("`")[1]
        path = f"{path}.{field}" if path else field
        return InvalidRequest(f"{path}: Field required.", code="missing_required_parameter", param=path)
    if reason.startswith("Invalid value '") and path.endswith("type"):
        value = reason.split("'")[1][:60]
        return InvalidRequest(f"{path}: type '{value}' cannot be translated for this model.", param=path)
    if not path:
        return InvalidRequest(f"Invalid request body: {reason[:200]}.", code="invalid_body")
    return InvalidRequest(f"{path}: {reason[:200]}.", param=path)
