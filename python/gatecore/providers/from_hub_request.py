"""Reading an OpenAI chat request for translation into another provider's format.

What every translating provider shares: decoding the body, rejecting what it cannot express with a
400 naming the field, the max-token fields, stop sequences, image URLs and tool-call arguments.
"""

from __future__ import annotations

from typing import Any

import orjson

from gatecore.errors import InvalidRequest

JsonObject = dict[str, Any]


def load_chat(body: bytes) -> JsonObject:
    """The request body as a JSON object (the server already checked it is one)."""
    doc = orjson.loads(body)
    if not isinstance(doc, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return doc


def untranslatable(field: str, provider: str, why: str = "") -> InvalidRequest:
    """400 for a request field the provider has no equivalent of."""
    reason = f" ({why})" if why else ""
    return InvalidRequest(
        f"'{field}' is not supported by this model's provider ({provider}){reason}.",
        code="unsupported_parameter",
        param=field,
    )


# Request fields for `reject_set`, each with the values that mean "not used", shared by the translating
# providers. Log-probabilities, token biases, audio and predicted outputs: no translated API has them.
NO_LOGPROBS_AUDIO_PREDICTION: dict[str, tuple[object, ...]] = {
    "logprobs": (False,),
    "top_logprobs": (0,),
    "logit_bias": ({},),
    "audio": (),
    "prediction": (),
}
# Output modalities, reasoning effort and the legacy `functions` API: only OpenAI-shaped APIs say them.
NO_OPENAI_EXTRAS: dict[str, tuple[object, ...]] = {
    "modalities": (["text"],),
    "reasoning_effort": (),
    "functions": (),
    "function_call": (),
}
# Seed and repetition penalties, for the APIs without them (Anthropic, Bedrock Converse).
NO_SEED_OR_PENALTIES: dict[str, tuple[object, ...]] = {
    "seed": (),
    "frequency_penalty": (0, 0.0),
    "presence_penalty": (0, 0.0),
}


def reject_set(doc: JsonObject, provider: str, fields: dict[str, tuple[object, ...]]) -> None:
    """Raise for any of `fields` the client set to a value other than its harmless ones (or null)."""
    for field, harmless in fields.items():
        value = doc.get(field)
        if value is not None and value not in harmless:
            raise untranslatable(field, provider)


def messages_of(doc: JsonObject) -> list[JsonObject]:
    messages = doc.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(f"messages[{i}] must be an object with a 'role'.", param=f"messages[{i}]")
    return messages


def max_tokens_of(doc: JsonObject) -> int | None:
    """`max_completion_tokens`, else the older `max_tokens`."""
    for field in ("max_completion_tokens", "max_tokens"):
        value = doc.get(field)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidRequest(f"'{field}' must be a positive integer.", param=field)
            return value
    return None


def stop_sequences_of(doc: JsonObject) -> list[str] | None:
    stop = doc.get("stop")
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise InvalidRequest("'stop' must be a string or an array of strings.", param="stop")


def n_of(doc: JsonObject, provider: str) -> None:
    """Providers that answer one choice only: n must be absent or 1."""
    n = doc.get("n")
    if n is not None and n != 1:
        raise untranslatable("n", provider, "it returns one choice per request; send n=1")


def text_of(content: Any, param: str) -> str:
    """The text of a system/developer/tool message: a string or text parts (joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise InvalidRequest(f"{param}[{j}] must be a text part here.", param=f"{param}[{j}]")
            texts.append(part["text"])
        return "\n".join(texts)
    raise InvalidRequest(f"{param} must be a string or an array of parts.", param=param)


def content_parts(content: Any, param: str) -> list[JsonObject]:
    """A user/assistant content as OpenAI parts (a string becomes one text part)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise InvalidRequest(f"{param}[{j}] must be a content part object.", param=f"{param}[{j}]")
        return content
    raise InvalidRequest(f"{param} must be a string or an array of parts.", param=param)


def image_url_of(part: JsonObject, param: str) -> tuple[str, str] | str:
    """An image part's source: `(media type, base64 data)` for a data URL, else the http(s) URL."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise InvalidRequest(f"{param}.image_url.url must be a string.", param=f"{param}.image_url")
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or not media_type:
            raise InvalidRequest(
                f"{param}.image_url.url: a data URL must be data:<media type>;base64,<data>.",
                param=f"{param}.image_url",
            )
        return media_type, data
    if url.startswith(("http://", "https://")):
        return url
    raise InvalidRequest(f"{param}.image_url.url must be an http(s) or data URL.", param=f"{param}.image_url")


def arguments_of(call: Any, param: str) -> tuple[str, str, JsonObject]:
    """An assistant tool call's `(id, name, parsed arguments)`."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"{param} must be a function tool call.", param=param)
    raw = function.get("arguments") or "{}"
    try:
        arguments = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        raise InvalidRequest(
            f"{param}.function.arguments must be a JSON object.", param=f"{param}.function.arguments"
        )
    call_id = call.get("id")
    return call_id if isinstance(call_id, str) else "", function["name"], arguments


def functions_of(doc: JsonObject) -> list[JsonObject]:
    """The request's function tools as `{name, description?, parameters?}`."""
    tools = doc.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array.", param="tools")
    functions = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if (
            not isinstance(tool, dict)
            or tool.get("type", "function") != "function"
            or not isinstance(function, dict)
        ):
            raise InvalidRequest(f"tools[{i}] must be a function tool.", param=f"tools[{i}]")
        if not isinstance(function.get("name"), str):
            raise InvalidRequest(
                f"tools[{i}].function.name must be a string.", param=f"tools[{i}].function.name"
            )
        functions.append(function)
    return functions


def tool_choice_of(doc: JsonObject) -> tuple[str, str | None] | None:
    """`("auto" | "none" | "required" | "function", function name)`, or None when absent."""
    choice = doc.get("tool_choice")
    if choice is None:
        return None
    if choice in ("auto", "none", "required"):
        return choice, None
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return "function", function["name"]
    raise InvalidRequest("'tool_choice' must be auto, none, required or a function.", param="tool_choice")


def response_format_of(doc: JsonObject) -> tuple[str, JsonObject | None, str | None]:
    """`("text" | "json_object" | "json_schema", schema, schema name)`."""
    fmt = doc.get("response_format")
    if fmt is None:
        return "text", None, None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind in ("text", "json_object"):
        return kind, None, None
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise InvalidRequest(
                "response_format.json_schema.schema must be an object.", param="response_format"
            )
        name = spec.get("name") if isinstance(spec, dict) else None
        return kind, schema, name if isinstance(name, str) else None
    raise InvalidRequest(
        "'response_format.type' must be text, json_object or json_schema.", param="response_format"
    )
