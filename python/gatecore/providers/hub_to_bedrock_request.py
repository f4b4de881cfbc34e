"""OpenAI chat request → Bedrock Converse request body (the answer side: bedrock_response_to_hub.py).

Converse takes images as bytes only (base64 in JSON), so http(s) image URLs are a 400 naming the
field. Tool results go in user turns as `toolResult` blocks; consecutive tool messages are merged
into one user turn, as Converse requires alternating roles.
"""

from __future__ import annotations

from typing import Any

from gatecore.errors import InvalidRequest
from gatecore.providers.from_hub_request import (
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

KIND = "bedrock"
IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_UNSUPPORTED: dict[str, tuple[object, ...]] = {**NO_LOGPROBS_AUDIO_PREDICTION, **NO_SEED_OR_PENALTIES}


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


def add_betas(body: JsonObject, headers: list[tuple[str, str]]) -> None:
    """The client's `anthropic-beta` header (comma-separated) as Bedrock's `anthropic_beta` list for
    Claude models, at most 32 names of at most 100 characters each."""
    betas = [name.strip() for _, value in headers for name in value.split(",") if name.strip()]
    betas = [name for name in betas if len(name) <= 100][:32]
    if betas:
        body.setdefault("additionalModelRequestFields", {})["anthropic_beta"] = betas


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
