"""OpenAI chat request → Gemini generateContent request (API reference, "models.generateContent").

Mapping:
- system/developer messages → `systemInstruction.parts`; user → role `user`, assistant → role `model`;
  consecutive turns of one role are merged;
- text parts → `{text}`; images: data URL → `inlineData {mimeType, data}`, http(s) URL →
  `fileData {mimeType, fileUri}` (mimeType guessed from the URL's extension, else image/jpeg);
- assistant tool_calls → `functionCall {name, args}`; role tool → `functionResponse {name,
  response}` (the name looked up from the assistant call with that id; the result is the parsed JSON
  object when the content is one, else `{"content": text}`);
- tools → one `functionDeclarations` list; tool_choice auto/none/required/function →
  functionCallingConfig mode AUTO/NONE/ANY/ANY with allowedFunctionNames;
- generationConfig: temperature, top_p → topP, top_k → topK, max_(completion_)tokens →
  maxOutputTokens, stop → stopSequences, seed, presence/frequency_penalty; response_format
  json_object → responseMimeType application/json, json_schema → also responseSchema;
- schemas (tool parameters, response schema) are reduced to the OpenAPI subset Gemini accepts:
  unknown keywords (additionalProperties, $schema, strict, …) are dropped, `type: [T, "null"]`
  becomes `nullable`;
- reasoning_effort → generationConfig.thinkingConfig.thinkingBudget (none 0, minimal 512, low 1024,
  medium 8192, high 24576: Gemini 2.5's own defaults and bounds);
- n>1, logprobs, logit_bias and audio → 400 naming the field.
"""

from __future__ import annotations

from typing import Any

import orjson

from gatecore.errors import InvalidRequest
from gatecore.providers.from_hub_request import (
    NO_LOGPROBS_AUDIO_PREDICTION,
    NO_OPENAI_EXTRAS,
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

PROVIDER = "gemini"
_UNSUPPORTED: dict[str, tuple[object, ...]] = {
    **NO_LOGPROBS_AUDIO_PREDICTION,
    **{name: values for name, values in NO_OPENAI_EXTRAS.items() if name != "reasoning_effort"},
}
# OpenAI's reasoning effort as a Gemini thinking budget (tokens).
_THINKING_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
_SCHEMA_KEYS = frozenset(
    (
        "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
        "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
        "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
    )
)  # fmt: skip
_IMAGE_TYPES = {".png": "image/png", ".webp": "image/webp", ".gif": "image/gif", ".heic": "image/heic"}


def gemini_request(doc: JsonObject) -> JsonObject:
    """The generateContent body for `doc` (the model goes in the URL, not the body)."""
    n_of(doc, PROVIDER)
    reject_set(doc, PROVIDER, _UNSUPPORTED)
    system, contents = _contents(messages_of(doc))
    out: JsonObject = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    functions = functions_of(doc)
    if functions:
        declarations = []
        for function in functions:
            declaration: JsonObject = {"name": function["name"]}
            if isinstance(function.get("description"), str):
                declaration["description"] = function["description"]
            if isinstance(function.get("parameters"), dict) and function["parameters"].get("properties"):
                declaration["parameters"] = gemini_schema(function["parameters"])
            declarations.append(declaration)
        out["tools"] = [{"functionDeclarations": declarations}]
        choice = tool_choice_of(doc)
        if choice is not None:
            kind, name = choice
            mode = {"auto": "AUTO", "none": "NONE", "required": "ANY", "function": "ANY"}[kind]
            config: JsonObject = {"mode": mode}
            if name is not None:
                config["allowedFunctionNames"] = [name]
            out["toolConfig"] = {"functionCallingConfig": config}
    generation = _generation_config(doc)
    if generation:
        out["generationConfig"] = generation
    return out


def _generation_config(doc: JsonObject) -> JsonObject:
    config: JsonObject = {}
    for field, name in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if doc.get(field) is not None:
            config[name] = doc[field]
    max_tokens = max_tokens_of(doc)
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = stop_sequences_of(doc)
    if stop:
        config["stopSequences"] = stop
    effort = doc.get("reasoning_effort")
    if effort is not None:
        budget = _THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
        if budget is None:
            raise InvalidRequest(
                f"'reasoning_effort' must be one of {', '.join(_THINKING_BUDGETS)}.",
                code="invalid_value",
                param="reasoning_effort",
            )
        config["thinkingConfig"] = {"thinkingBudget": budget}
    kind, schema, _ = response_format_of(doc)
    if kind != "text":
        config["responseMimeType"] = "application/json"
        if schema is not None:
            config["responseSchema"] = gemini_schema(schema)
    return config


def gemini_schema(schema: Any) -> Any:
    """A JSON Schema reduced to the OpenAPI subset Gemini's Schema object accepts."""
    if not isinstance(schema, dict):
        return schema
    out: JsonObject = {}
    for key, value in schema.items():
        if key not in _SCHEMA_KEYS:
            continue
        if key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if len(types) != len(value):
                out["nullable"] = True
            value = types[0] if types else "string"
        if key == "properties" and isinstance(value, dict):
            value = {name: gemini_schema(sub) for name, sub in value.items()}
        elif key in ("items",):
            value = gemini_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            value = [gemini_schema(sub) for sub in value]
        out[key] = value
    return out


def _contents(messages: list[JsonObject]) -> tuple[list[str], list[JsonObject]]:
    system: list[str] = []
    contents: list[JsonObject] = []
    call_names: dict[str, str] = {}
    for i, message in enumerate(messages):
        role = message["role"]
        param = f"messages[{i}]"
        if role in ("system", "developer"):
            system.append(text_of(message.get("content"), f"{param}.content"))
            continue
        if role == "user":
            parts = _user_parts(message.get("content"), f"{param}.content")
        elif role == "assistant":
            parts = _model_parts(message, param, call_names)
            role = "model"
            if not parts:
                continue
        elif role == "tool":
            parts = [_function_response(message, param, call_names)]
            role = "user"
        else:
            raise InvalidRequest(f"{param}.role '{role}' is not supported.", param=f"{param}.role")
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    if not contents:
        raise InvalidRequest("The request needs at least one user or assistant message.", param="messages")
    return [s for s in system if s], contents


def _user_parts(content: Any, param: str) -> list[JsonObject]:
    parts: list[JsonObject] = []
    for j, part in enumerate(content_parts(content, param)):
        kind = part["type"]
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"text": part["text"]})
        elif kind == "image_url":
            source = image_url_of(part, f"{param}[{j}]")
            if isinstance(source, tuple):
                parts.append({"inlineData": {"mimeType": source[0], "data": source[1]}})
            else:
                suffix = "." + source.rsplit(".", 1)[-1].lower() if "." in source.rsplit("/", 1)[-1] else ""
                mime = _IMAGE_TYPES.get(suffix, "image/jpeg")
                parts.append({"fileData": {"mimeType": mime, "fileUri": source}})
        else:
            raise untranslatable(f"{param}[{j}].type", PROVIDER, f"content part '{kind[:40]}'")
    return parts


def _model_parts(message: JsonObject, param: str, call_names: dict[str, str]) -> list[JsonObject]:
    parts: list[JsonObject] = []
    for j, part in enumerate(content_parts(message.get("content"), f"{param}.content")):
        if part["type"] == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                parts.append({"text": part["text"]})
        elif part["type"] != "refusal":
            raise untranslatable(f"{param}.content[{j}].type", PROVIDER)
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise InvalidRequest(f"{param}.tool_calls must be an array.", param=f"{param}.tool_calls")
    for k, call in enumerate(calls):
        call_id, name, arguments = arguments_of(call, f"{param}.tool_calls[{k}]")
        call_names[call_id] = name
        parts.append({"functionCall": {"name": name, "args": arguments}})
    return parts


def _function_response(message: JsonObject, param: str, call_names: dict[str, str]) -> JsonObject:
    call_id = message.get("tool_call_id")
    name = call_names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        raise InvalidRequest(
            f"{param}.tool_call_id does not answer a tool call of an earlier assistant message.",
            param=f"{param}.tool_call_id",
        )
    text = text_of(message.get("content"), f"{param}.content")
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"content": text}
    return {"functionResponse": {"name": name, "response": response}}
