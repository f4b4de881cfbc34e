"""OpenAI Responses request → OpenAI chat request (the hub format).

Every field either has a chat counterpart, is a hint with no effect on the answer (ignored), or is
refused with a 400 naming it. Input items are decoded one at a time so each error names its path
(`input[2].content[0].image_url`). Choices the hub format forces:
- `instructions` and `system`/`developer` messages become chat system messages (not every provider
  knows the `developer` role);
- consecutive `function_call` items (and an assistant message just before them) become one assistant
  message with `tool_calls`; `function_call_output` becomes a `role: tool` message, whose call id must
  name a call made earlier in the conversation; images in a tool output move to a user message after it;
- `reasoning` items are left out: reasoning is not sent back to a model, as chat APIs ask, and an
  encrypted one only OpenAI could read;
- tools a provider cannot run (web_search, file_search, code_interpreter, computer use, MCP, `custom`,
  Codex's `namespace`, …) are collected in `dropped` (`<index>:<type>[:<name>]`) for the caller to
  drop or refuse;
- unknown top-level fields pass through unchanged, as on the OpenAI chat route.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gatecore.api.responses import (
    RESPONSES_FIELDS,
    InputImage,
    InputText,
    Item,
    OutputText,
    Refusal,
    ResponsesRequest,
)
from gatecore.errors import InvalidRequest
from gatecore.translate.responses_options_to_hub import (
    need,
    text_format_to_chat,
    tool_choice_to_chat,
    tools_to_chat,
    validation_error,
)

# Bounds of what one request may carry (the body size is bounded before this by the server).
MAX_ITEMS = 10_000
MAX_METADATA_PAIRS = 16
# Responses-only hints with no effect on what a model answers (or that gatecore answers itself).
_IGNORED = frozenset(
    {"client_metadata", "prompt_cache_key", "prompt_cache_retention", "truncation", "service_tier",
     "stream_options", "top_logprobs"}
)  # fmt: skip
# Features no hub-format model can honour, each refused unless left at its default.
_REFUSED: dict[str, tuple[str, object]] = {
    "background": ("background responses are not supported by gatecore", False),
    "conversation": ("server-side conversations are not supported; use previous_response_id", None),
    "prompt": ("a stored prompt is not taken here; send it to POST /v1/responses", None),
    "max_tool_calls": ("max_tool_calls cannot be enforced for this model", None),
}
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}

_request = msgspec.json.Decoder(ResponsesRequest)
_top_level = msgspec.json.Decoder(dict[str, msgspec.Raw])
_any = msgspec.json.Decoder()
_item = msgspec.json.Decoder(Item)


class ItemHead(msgspec.Struct):
    type: str | None = None
    role: str | None = None


_item_head = msgspec.json.Decoder(ItemHead)


class HubRequest:
    """A Responses request translated: the chat request, the tools dropped, and the conversation's
    items in the Responses shape (kept by the stored-responses store)."""

    __slots__ = ("doc", "dropped", "function_tools", "images", "items", "request")

    def __init__(
        self,
        request: ResponsesRequest,
        doc: dict[str, Any],
        dropped: list[str],
        items: list[Any],
        function_tools: list[msgspec.Raw],
    ):
        self.request = request
        self.doc = doc
        self.dropped = dropped
        # This request's input items: raw JSON as the client sent them (or a JSON value), never
        # turned into Python objects on the request path (`plain_items` does, for the store).
        self.items = items
        self.function_tools = function_tools  # the client's function tools, raw (echoed in responses)
        messages = doc["messages"]
        # Whether some message carries an image part (routing's vision need), without a byte search.
        self.images = any(
            isinstance(m["content"], list) and any(p.get("type") == "image_url" for p in m["content"])
            for m in messages
        )


def decode_responses_request(body: bytes) -> tuple[ResponsesRequest, dict[str, msgspec.Raw]]:
    """The typed request and every top-level member as raw JSON; 400 naming the field otherwise."""
    if not body:
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        members = _top_level.decode(body)
    except msgspec.ValidationError:
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_body") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None
    try:
        request = _request.decode(body)
    except msgspec.ValidationError as exc:
        raise validation_error(str(exc), "") from None
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply.", code="invalid_json") from None
    return request, members


def input_items(request: ResponsesRequest) -> list[Any]:
    """The request's `input` as a list of Responses items, each raw JSON (a string is one user message)."""
    given = request.input
    if given is None:
        raise InvalidRequest("input: Field required.", code="missing_required_parameter", param="input")
    if isinstance(given, str):
        return [{"type": "message", "role": "user", "content": given}]
    if len(given) > MAX_ITEMS:
        raise InvalidRequest(f"input: at most {MAX_ITEMS} items are accepted.", param="input")
    return list(given)


def plain_items(items: list[Any]) -> list[Any]:
    """Items as JSON values (raw ones decoded)."""
    return [_any.decode(item) if isinstance(item, msgspec.Raw) else item for item in items]


def hub_request(
    request: ResponsesRequest,
    members: dict[str, msgspec.Raw],
    history: list[Any],
    items: list[Any],
) -> HubRequest:
    """The chat request equivalent to `request`, continuing `history` (the items of the responses
    before it, replayed) with `items` (this request's input)."""
    _check_metadata(request.metadata)
    doc: dict[str, Any] = {"model": request.model}
    messages: list[dict[str, Any]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    calls: set[str] = set()
    for i, item in enumerate(history):
        _add_item(item, f"previous_response_id (item {i})", messages, calls)
    if isinstance(request.input, str):  # the common short form: one user message
        messages.append({"role": "user", "content": request.input})
    else:
        for i, item in enumerate(items):
            _add_item(item, f"input[{i}]", messages, calls)
    if not messages:
        raise InvalidRequest("input: at least one item is required.", param="input")
    doc["messages"] = messages
    if request.max_output_tokens is not None:
        doc["max_tokens"] = request.max_output_tokens
    if request.stream:
        doc["stream"] = True
    if request.temperature is not None:
        doc["temperature"] = request.temperature
    if request.top_p is not None:
        doc["top_p"] = request.top_p
    user = request.safety_identifier or request.user
    if user is not None:
        doc["user"] = user
    dropped: list[str] = []
    function_tools: list[msgspec.Raw] = []
    if request.tools:
        tools = tools_to_chat(request.tools, dropped, function_tools)
        if tools:
            doc["tools"] = tools
            if request.parallel_tool_calls is not None:
                doc["parallel_tool_calls"] = request.parallel_tool_calls
    if request.tool_choice is not None and "tools" in doc:
        doc["tool_choice"] = tool_choice_to_chat(request.tool_choice)
    if request.reasoning is not None and request.reasoning.effort is not None:
        doc["reasoning_effort"] = request.reasoning.effort
    if request.text is not None and request.text.format is not None:
        text_format_to_chat(request.text.format, doc)
    for name, raw in members.items():
        if name in RESPONSES_FIELDS:
            continue
        refused = _REFUSED.get(name)
        if refused is not None:
            reason, default = refused
            if _any.decode(raw) != default:
                raise InvalidRequest(f"{name}: cannot be translated for this model: {reason}.", param=name)
            continue
        if name in _IGNORED:
            continue
        doc[name] = raw
    return HubRequest(request, doc, dropped, items, function_tools)


def _check_metadata(metadata: dict[str, str] | None) -> None:
    """The reference's bounds (it is stored and echoed in every response object)."""
    if metadata is None:
        return
    if len(metadata) > MAX_METADATA_PAIRS:
        raise InvalidRequest(f"metadata: at most {MAX_METADATA_PAIRS} pairs are accepted.", param="metadata")
    for key, value in metadata.items():
        if len(key) > 64 or len(value) > 512:
            raise InvalidRequest(
                f"metadata.{key[:64]}: keys are at most 64 characters, values at most 512.", param="metadata"
            )


# -- items -------------------------------------------------------------------------------------------


def _add_item(item: Any, path: str, messages: list[dict[str, Any]], calls: set[str]) -> None:
    raw = item if isinstance(item, msgspec.Raw) else msgspec.json.encode(item)
    try:
        decoded = _item.decode(raw)
    except msgspec.ValidationError as exc:
        kind = _kind_of(raw, path)
        if kind == "reasoning":
            return  # never sent back to a model (see the module docstring)
        _check_kind(kind, path)
        raise validation_error(str(exc), path) from None
    kind = decoded.type or ("message" if decoded.role is not None else None)
    if kind == "reasoning":
        return
    _check_kind(kind, path)
    if kind == "message":
        _message_item(decoded, path, messages)
    elif kind == "function_call":
        call_id, name, arguments = (
            need(decoded.call_id, path, "call_id"),
            need(decoded.name, path, "name"),
            (need(decoded.arguments, path, "arguments")),
        )
        calls.add(call_id)
        tool_call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(tool_call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [tool_call]})
    else:
        call_id = need(decoded.call_id, path, "call_id")
        output = need(decoded.output, path, "output")
        if call_id not in calls:
            raise InvalidRequest(
                f"{path}.call_id: no function_call with call_id '{call_id[:80]}' precedes this output.",
                param=f"{path}.call_id",
            )
        _tool_output(call_id, output, path, messages)


def _kind_of(raw: bytes, path: str) -> str | None:
    try:
        head = _item_head.decode(raw)
    except msgspec.ValidationError:
        raise InvalidRequest(f"{path}: an item must be an object with a 'type'.", param=path) from None
    return head.type or ("message" if head.role is not None else None)


def _check_kind(kind: str | None, path: str) -> None:
    if kind in ("message", "function_call", "function_call_output"):
        return
    if kind is None:
        raise InvalidRequest(f"{path}.type: Field required.", param=f"{path}.type")
    raise InvalidRequest(
        f"{path}.type: items of type '{kind[:60]}' cannot be translated for this model.", param=f"{path}.type"
    )


def _message_item(item: Item, path: str, messages: list[dict[str, Any]]) -> None:
    given_role: str = need(item.role, path, "role")
    role = _ROLES.get(given_role)
    if role is None:
        raise InvalidRequest(
            f"{path}.role: must be 'user', 'assistant', 'system' or 'developer', not '{given_role[:40]}'.",
            param=f"{path}.role",
        )
    content = need(item.content, path, "content")
    if isinstance(content, str):
        messages.append({"role": role, "content": content})
        return
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        where = f"{path}.content[{j}]"
        if isinstance(part, InputText | OutputText):
            parts.append({"type": "text", "text": part.text})
        elif isinstance(part, Refusal):
            parts.append({"type": "text", "text": part.refusal})
        elif isinstance(part, InputImage):
            if role != "user":
                raise InvalidRequest(f"{where}: images are accepted in user messages only.", param=where)
            parts.append(_image(part, where))
        else:
            raise _no_files(where)
    if role != "user" or (len(parts) == 1 and parts[0]["type"] == "text"):
        # System and assistant messages carry text only, which every engine takes as a string.
        messages.append({"role": role, "content": "".join(p["text"] for p in parts)})
    else:
        messages.append({"role": role, "content": parts})


def _tool_output(call_id: str, output: Any, path: str, messages: list[dict[str, Any]]) -> None:
    if isinstance(output, str):
        messages.append({"role": "tool", "tool_call_id": call_id, "content": output})
        return
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for j, part in enumerate(output):
        where = f"{path}.output[{j}]"
        if isinstance(part, InputText):
            texts.append(part.text)
        elif isinstance(part, InputImage):  # chat tool messages carry text: images follow as the user's
            images.append(_image(part, where))
        else:
            raise _no_files(where)
    messages.append({"role": "tool", "tool_call_id": call_id, "content": "\n".join(texts)})
    if images:
        messages.append({"role": "user", "content": images})


def _image(part: InputImage, where: str) -> dict[str, Any]:
    if not part.image_url:
        raise InvalidRequest(
            f"{where}.image_url: images must be given by URL or data URL (file ids exist only on OpenAI).",
            param=f"{where}.image_url",
        )
    image: dict[str, Any] = {"url": part.image_url}
    if part.detail is not None and part.detail != "auto":
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def _no_files(where: str) -> InvalidRequest:
    return InvalidRequest(f"{where}: input files cannot be translated for this model.", param=where)
