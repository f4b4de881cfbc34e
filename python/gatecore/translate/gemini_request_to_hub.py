"""Gemini `generateContent` request → OpenAI chat request (the hub format).

Every field either has an OpenAI counterpart, is a hint with no effect on the answer (ignored:
`safetySettings`, `labels`), or is refused with a 400 naming it (Google-run tools, `cachedContent`,
file references, non-text response modalities). Top-level fields this module does not know pass
through unchanged, as on the OpenAI and Anthropic routes (engine extras, a test upstream's steering).

Choices the hub format forces (translate/README.md):
- `model` turns become assistant messages; `functionCall` parts their `tool_calls` (the call's `id`
  when the client sent one, else `call_<turn>_<n>`); `functionResponse` parts become `role: tool`
  messages matched to the previous turn's calls by id, else by name in order (400 when none fits);
- thought parts (`thought: true`) of earlier model turns are left out, as reasoning APIs ask;
- `generationConfig` and the schemas are translated by gemini_generation_to_hub.py.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from gatecore.api.gemini import (
    REQUEST_FIELDS,
    Content,
    CountTokensRequest,
    GenerateContentRequest,
    Part,
    Tool,
)
from gatecore.errors import InvalidRequest
from gatecore.translate.gemini_generation_to_hub import generation_fields, json_schema

_IGNORED = frozenset({"safetySettings", "labels", "model"})
_REFUSED_TOP = {"cachedContent": "cached contents exist only on Google's API"}
_GOOGLE_TOOLS = (
    ("google_search", "googleSearch"),
    ("google_search_retrieval", "googleSearchRetrieval"),
    ("code_execution", "codeExecution"),
    ("url_context", "urlContext"),
    ("file_search", "fileSearch"),
    ("computer_use", "computerUse"),
    ("google_maps", "googleMaps"),
)
_MODES = {"AUTO": "auto", "ANY": "required", "VALIDATED": "auto", "NONE": "none"}

_decoder = msgspec.json.Decoder(GenerateContentRequest)
_count_decoder = msgspec.json.Decoder(CountTokensRequest)
_top_level = msgspec.json.Decoder(dict[str, msgspec.Raw])
_AT_PATH = re.compile(r" - at `\$\.?([^`]{0,300})`$")
_INDEX = re.compile(r"\[(\d+)\]")


def decode_request(body: bytes) -> tuple[GenerateContentRequest, dict[str, msgspec.Raw]]:
    """The typed request and its top-level members; 400 naming the field otherwise."""
    members = _members(body)
    return _decode(_decoder, body), members


def decode_count_request(body: bytes) -> GenerateContentRequest:
    """A countTokens body as the generateContent request whose input it counts."""
    _members(body)
    request: CountTokensRequest = _decode(_count_decoder, body)
    if request.generate_content_request is not None:
        return request.generate_content_request
    if request.contents is None:
        raise InvalidRequest(
            "contents: either 'contents' or 'generateContentRequest' is required.", param="contents"
        )
    return GenerateContentRequest(contents=request.contents)


def _members(body: bytes) -> dict[str, msgspec.Raw]:
    if not body:
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        return _top_level.decode(body)
    except msgspec.ValidationError:
        raise InvalidRequest("The request body must be a JSON object.") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None


def _decode(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _AT_PATH.search(message)
        path = _INDEX.sub(r".\1", match.group(1)) if match else None
        reason = message[: match.start()] if match else message
        where = f"{path}: " if path else ""
        raise InvalidRequest(f"Invalid JSON payload: {where}{reason[:200]}.", param=path) from None
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply.", code="invalid_json") from None


def openai_chat_request(
    request: GenerateContentRequest, members: dict[str, msgspec.Raw], model: str, stream: bool
) -> dict[str, Any]:
    """The OpenAI chat request equivalent to `request` for `model`."""
    for name in members:
        if name in REQUEST_FIELDS or name in _IGNORED:
            continue
        reason = _REFUSED_TOP.get(name)
        if reason is not None:
            raise InvalidRequest(f"{name}: cannot be translated for this model: {reason}.", param=name)
    doc: dict[str, Any] = {"model": model, "messages": openai_messages(request)}
    if stream:
        doc["stream"] = True
    if request.tools:
        tools = _tools(request.tools)
        if tools:
            doc["tools"] = tools
    if request.tool_config is not None and request.tool_config.function_calling_config is not None:
        _tool_choice(request, doc)
    if request.generation_config is not None:
        generation_fields(request.generation_config, doc)
    for name, raw in members.items():
        if name not in REQUEST_FIELDS and name not in _IGNORED and name not in doc:
            doc[name] = raw
    return doc


def openai_messages(request: GenerateContentRequest) -> list[dict[str, Any]]:
    """`systemInstruction` and `contents` as OpenAI chat messages."""
    out: list[dict[str, Any]] = []
    system = request.system_instruction
    if system is not None:
        texts = [p.text for p in system.parts if p.text]
        if len(texts) != len(system.parts):
            raise InvalidRequest(
                "systemInstruction.parts: only text parts are allowed.", param="systemInstruction"
            )
        if texts:
            out.append({"role": "system", "content": "\n\n".join(texts)})
    if not request.contents:
        raise InvalidRequest("contents: at least one content is required.", param="contents")
    pending: list[tuple[str, str]] = []  # (id, name) of the previous model turn's calls
    for i, content in enumerate(request.contents):
        role = content.role or "user"
        if role in ("user", "function"):  # "function": older clients' turn of function responses
            _user_turn(content, i, pending, out)
            pending = []
        elif role == "model":
            pending = _model_turn(content, i, out)
        else:
            raise InvalidRequest(
                f"contents.{i}.role: must be 'user' or 'model', not '{role[:40]}'.",
                param=f"contents.{i}.role",
            )
    return out


def _user_turn(content: Content, i: int, pending: list[tuple[str, str]], out: list[dict[str, Any]]) -> None:
    parts: list[dict[str, Any]] = []
    tool_messages = 0
    for j, part in enumerate(content.parts):
        where = f"contents.{i}.parts.{j}"
        if part.function_response is not None:
            response = part.function_response
            call_id = _match_call(response.id, response.name, pending, where)
            result = bytes(response.response).decode() if response.response else "{}"
            out.append({"role": "tool", "tool_call_id": call_id, "content": result})
            tool_messages += 1
        elif part.text is not None:
            parts.append({"type": "text", "text": part.text})
        elif part.inline_data is not None:
            parts.append(_image(part, where))
        else:
            raise _unsupported(part, where)
    if parts or not tool_messages:
        out.append({"role": "user", "content": _text_or_parts(parts)})


def _match_call(call_id: str | None, name: str, pending: list[tuple[str, str]], where: str) -> str:
    """The id of the earlier call a functionResponse answers (each call answered once)."""
    for k, (pending_id, pending_name) in enumerate(pending):
        if (call_id is not None and pending_id == call_id) or (call_id is None and pending_name == name):
            del pending[k]
            return pending_id
    for k, (pending_id, pending_name) in enumerate(pending):  # an id the client made up: by name
        if pending_name == name:
            del pending[k]
            return pending_id
    raise InvalidRequest(
        f"{where}.functionResponse: no functionCall named '{name[:60]}' in the model turn before it.",
        param=f"{where}.functionResponse",
    )


def _model_turn(content: Content, i: int, out: list[dict[str, Any]]) -> list[tuple[str, str]]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    pending: list[tuple[str, str]] = []
    for j, part in enumerate(content.parts):
        if part.thought or (
            part.thought_signature is not None and part.text is None and part.function_call is None
        ):
            continue  # earlier reasoning (and a bare signature part) is not sent back
        if part.function_call is not None:
            call = part.function_call
            call_id = call.id or f"call_{i}_{len(calls)}"
            arguments = bytes(call.args).decode() if call.args else "{}"
            calls.append(
                {"id": call_id, "type": "function", "function": {"name": call.name, "arguments": arguments}}
            )
            pending.append((call_id, call.name))
        elif part.text is not None:
            texts.append(part.text)
        else:
            raise _unsupported(part, f"contents.{i}.parts.{j}")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    out.append(message)
    return pending


def _image(part: Part, where: str) -> dict[str, Any]:
    blob = part.inline_data
    assert blob is not None
    media_type = blob.media_type()
    if not media_type.startswith("image/") or not media_type.isprintable() or len(media_type) > 100:
        raise InvalidRequest(
            f"{where}.inlineData.mimeType: only images can be translated for this model, not '{media_type[:60]}'.",
            param=f"{where}.inlineData.mimeType",
        )
    return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{blob.data}"}}


def _unsupported(part: Part, where: str) -> InvalidRequest:
    if part.file_data is not None:
        return InvalidRequest(
            f"{where}.fileData: file references cannot be translated for this model; send the data inline.",
            param=f"{where}.fileData",
        )
    if part.executable_code or part.code_execution_result:
        return InvalidRequest(f"{where}: code execution parts run only on Google's API.", param=where)
    if part.function_call is not None:
        return InvalidRequest(f"{where}.functionCall: only model turns may call functions.", param=where)
    return InvalidRequest(
        f"{where}: the part has no data (text, inlineData, functionCall, functionResponse).", param=where
    )


def _text_or_parts(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if len(parts) == 1 and parts[0]["type"] == "text":
        text: str = parts[0]["text"]
        return text
    if not parts:
        return ""
    return parts


def _tools(tools: list[Tool]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        for attribute, name in _GOOGLE_TOOLS:
            if getattr(tool, attribute):
                raise InvalidRequest(
                    f"tools.{i}.{name}: this tool runs only on Google's API.", param=f"tools.{i}.{name}"
                )
        for j, declaration in enumerate(tool.function_declarations or ()):
            function: dict[str, Any] = {"name": declaration.name}
            if declaration.description is not None:
                function["description"] = declaration.description
            if declaration.parameters_json_schema:
                function["parameters"] = declaration.parameters_json_schema
            elif declaration.parameters:
                function["parameters"] = json_schema(
                    declaration.parameters, f"tools.{i}.functionDeclarations.{j}.parameters"
                )
            else:
                function["parameters"] = {"type": "object", "properties": {}}
            out.append({"type": "function", "function": function})
    return out


def _tool_choice(request: GenerateContentRequest, doc: dict[str, Any]) -> None:
    assert request.tool_config is not None and request.tool_config.function_calling_config is not None
    config = request.tool_config.function_calling_config
    mode = (config.mode or "AUTO").upper()
    choice = _MODES.get(mode)
    if choice is None:
        raise InvalidRequest(
            f"toolConfig.functionCallingConfig.mode: unknown mode '{mode[:40]}'.",
            param="toolConfig.functionCallingConfig.mode",
        )
    names = config.allowed_function_names
    if names and mode in ("ANY", "VALIDATED") and len(names) == 1:
        doc["tool_choice"] = {"type": "function", "function": {"name": names[0]}}
        return
    if names and "tools" in doc:  # only the allowed functions are offered
        allowed = set(names)
        doc["tools"] = [t for t in doc["tools"] if t["function"]["name"] in allowed]
    doc["tool_choice"] = choice
