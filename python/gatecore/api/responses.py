"""The fields of OpenAI Responses API requests (`POST /v1/responses`), as the hub translation reads them.

Written from OpenAI's API reference. `input` items and `tools` are kept raw here and decoded one by one
(translate/responses_request_to_hub.py), so a bad item is a 400 naming its exact path (`input[3].content`)
and an item or tool type this module does not declare is named rather than silently dropped. Unknown
members inside an object are ignored by msgspec; unknown top-level fields are looked at separately.
"""

from __future__ import annotations

import msgspec

# -- input items -----------------------------------------------------------------------------------


class InputText(msgspec.Struct, tag="input_text", tag_field="type"):
    text: str


class OutputText(msgspec.Struct, tag="output_text", tag_field="type"):
    """Assistant text of an earlier turn (items the client replays)."""

    text: str


class Refusal(msgspec.Struct, tag="refusal", tag_field="type"):
    refusal: str


class InputImage(msgspec.Struct, tag="input_image", tag_field="type"):
    image_url: str | None = None
    file_id: str | None = None
    detail: str | None = None


class InputFile(msgspec.Struct, tag="input_file", tag_field="type"):
    """Declared so the refusal can name it: files have no hub-format counterpart."""

    file_id: str | None = None
    file_url: str | None = None
    file_data: str | None = None
    filename: str | None = None


ContentPart = InputText | OutputText | Refusal | InputImage | InputFile


class Item(msgspec.Struct):
    """Any input item, decoded in one pass: a `message` (or the easy form without `type`), a
    `function_call` or a `function_call_output`; which fields an item needs is checked by its type
    (translate/responses_request_to_hub.py)."""

    type: str | None = None
    role: str | None = None
    content: str | list[ContentPart] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | list[InputText | InputImage | InputFile] | None = None


# -- tools and options -----------------------------------------------------------------------------


class Tool(msgspec.Struct):
    """Any tool, decoded in one pass; only `function` tools are translated."""

    type: str = ""
    name: str | None = None
    parameters: msgspec.Raw = msgspec.Raw()  # empty when absent or null
    description: str | None = None
    strict: bool | None = None


class ToolChoiceFunction(msgspec.Struct):
    type: str
    name: str | None = None


class Reasoning(msgspec.Struct):
    effort: str | None = None
    summary: str | None = None
    generate_summary: str | None = None


class TextFormat(msgspec.Struct):
    type: str
    name: str | None = None
    schema: msgspec.Raw = msgspec.Raw()
    description: str | None = None
    strict: bool | None = None


class TextOptions(msgspec.Struct):
    format: TextFormat | None = None
    verbosity: str | None = None


class ResponsesRequest(msgspec.Struct):
    """`POST /v1/responses` (and `/v1/responses/input_tokens`, where `model` may be absent)."""

    model: str | None = None
    input: str | list[msgspec.Raw] | None = None
    instructions: str | None = None
    tools: list[msgspec.Raw] | None = None
    tool_choice: str | ToolChoiceFunction | None = None
    parallel_tool_calls: bool | None = None
    text: TextOptions | None = None
    reasoning: Reasoning | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    stream: bool | None = None
    previous_response_id: str | None = None
    include: list[str] | None = None
    user: str | None = None
    safety_identifier: str | None = None


RESPONSES_FIELDS = frozenset(ResponsesRequest.__struct_fields__)
"""Top-level fields the translation reads."""
