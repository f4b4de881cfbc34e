"""OpenAI chat ↔ Bedrock Converse: the request body, the whole answer, and stop reasons.

Converse takes images as bytes only (base64 in JSON), so http(s) image URLs are a 400 naming the
field. Tool results go in user turns as `toolResult` blocks; consecutive tool messages are merged
into one user turn, as Converse requires alternating roles.
"""

from __future__ import annotations

from typing import Any

import orjson

from gatecore.errors import InvalidRequest, UpstreamProtocolError
from gatecore.providers.chat_request import (
    NO_LOGPROBS_AUDIO_PREDICTION,
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
from gatecore.providers.completion_bodies import chat_completion_body, tool_call
from gatecore.providers.openai_chunks import usage_object

KIND = "bedrock"
IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_UNSUPPORTED: dict[str, tuple[object, ...]] = {**NO_LOGPROBS_AUDIO_PREDICTION, **NO_SEED_OR_PENALTIES}
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    return STOP_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def build_converse(doc: JsonObject) -> JsonObject:
    """The Converse body (the model goes in the URL) for an OpenAI chat request."""
    n_of(doc, KIND)
    reject_set(doc, KIND, _UNSUPPORTED)
    if response_format_of(doc)[0] != "text":
        raise untranslatable("response_format", KIND, "Converse has no JSON mode")
    system: list[JsonObject] = []
    turns: list[JsonObject] = []

    def add(role: str, blocks: list[JsonObject]) -> None:
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for i, message in enumerate(messages_of(doc)):
        role, param = message["role"], f"messages[{i}]"
        content = message.get("content")
        if role in ("system", "developer"):
            system.append({"text": text_of(content, f"{param}.content")})
        elif role == "user":
            add("user", _blocks(content, f"{param}.content"))
        elif role == "assistant":
            text = text_of(content, f"{param}.content")
            blocks: list[JsonObject] = [{"text": text}] if text else []
            for j, call in enumerate(message.get("tool_calls") or []):
                call_id, name, arguments = arguments_of(call, f"{param}.tool_calls[{j}]")
                blocks.append({"toolUse": {"toolUseId": call_id, "name": name, "input": arguments}})
            add("assistant", blocks)
        elif role == "tool":
            result_id = message.get("tool_call_id")
            if not isinstance(result_id, str):
                raise InvalidRequest(f"{param}.tool_call_id must be a string.", param=f"{param}.tool_call_id")
            result = {"toolUseId": result_id, "content": [{"text": text_of(content, f"{param}.content")}]}
            add("user", [{"toolResult": result}])
        else:
            raise InvalidRequest(f"{param}.role '{role}' is not supported.", param=f"{param}.role")
    body: JsonObject = {"messages": turns}
    if system:
        body["system"] = system
    inference: JsonObject = {}
    if (max_tokens := max_tokens_of(doc)) is not None:
        inference["maxTokens"] = max_tokens
    for field, name in (("temperature", "temperature"), ("top_p", "topP")):
        if doc.get(field) is not None:
            inference[name] = doc[field]
    if (stop := stop_sequences_of(doc)) is not None:
        inference["stopSequences"] = stop
    if inference:
        body["inferenceConfig"] = inference
    if doc.get("top_k") is not None:  # model-specific: passed where Anthropic models on Bedrock read it
        body["additionalModelRequestFields"] = {"top_k": doc["top_k"]}
    tool_config = _tool_config(doc)
    if tool_config is not None:
        body["toolConfig"] = tool_config
    return body


def _blocks(content: Any, param: str) -> list[JsonObject]:
    blocks: list[JsonObject] = []
    for j, part in enumerate(content_parts(content, param)):
        part_param = f"{param}[{j}]"
        if part["type"] == "text" and isinstance(part.get("text"), str):
            blocks.append({"text": part["text"]})
        elif part["type"] == "image_url":
            source = image_url_of(part, part_param)
            if isinstance(source, str):
                raise untranslatable(
                    f"{part_param}.image_url", KIND, "Converse takes image bytes: send a data URL"
                )
            image_format = IMAGE_FORMATS.get(source[0])
            if image_format is None:
                raise untranslatable(f"{part_param}.image_url", KIND, f"image type {source[0]}")
            blocks.append({"image": {"format": image_format, "source": {"bytes": source[1]}}})
        else:
            raise untranslatable(f"{part_param}.type", KIND, f"content part type '{part['type']}'")
    return blocks


def _tool_config(doc: JsonObject) -> JsonObject | None:
    functions = functions_of(doc)
    choice = tool_choice_of(doc)
    if not functions:
        return None
    if choice is not None and choice[0] == "none":
        raise untranslatable("tool_choice", KIND, "Converse cannot forbid tools: leave out 'tools' instead")
    tools = []
    for f in functions:
        spec: JsonObject = {
            "name": f["name"],
            "inputSchema": {"json": f.get("parameters") or {"type": "object"}},
        }
        if isinstance(f.get("description"), str):
            spec["description"] = f["description"]
        tools.append({"toolSpec": spec})
    config: JsonObject = {"tools": tools}
    if choice is not None:
        kind, name = choice
        config["toolChoice"] = (
            {"auto": {}}
            if kind == "auto"
            else {"any": {}}
            if kind == "required"
            else {"tool": {"name": name}}
        )
    return config


def converse_usage(usage: Any) -> JsonObject | None:
    """Converse `usage` (inputTokens, outputTokens, cacheReadInputTokens) as OpenAI usage."""
    if not isinstance(usage, dict):
        return None

    def count(name: str) -> int:
        value = usage.get(name)
        return value if isinstance(value, int) else 0

    cached = count("cacheReadInputTokens")
    # Bedrock counts cache reads and writes apart from inputTokens; OpenAI's prompt_tokens includes them.
    prompt = count("inputTokens") + cached + count("cacheWriteInputTokens")
    return usage_object(prompt, count("outputTokens"), cached)


def decode_converse(body: JsonObject, completion_id: str, model: str) -> bytes:
    """A Converse answer as an OpenAI chat.completion body."""
    output = body.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise UpstreamProtocolError("The upstream answer has no output message.")
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[JsonObject] = []
    for block in message["content"]:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            arguments = orjson.dumps(use.get("input") or {}).decode()
            calls.append(tool_call(str(use.get("toolUseId", "")), str(use.get("name", "")), arguments))
        elif isinstance(block.get("reasoningContent"), dict):
            text = (block["reasoningContent"].get("reasoningText") or {}).get("text")
            if isinstance(text, str):
                reasoning.append(text)
    return chat_completion_body(
        completion_id,
        model,
        "".join(texts) if texts or not calls else None,
        finish_reason(body.get("stopReason")),
        converse_usage(body.get("usage")),
        calls,
        "".join(reasoning) or None,
    )
