"""The fields of Anthropic Messages API requests (`POST /v1/messages`, `/v1/messages/count_tokens`).

Written from Anthropic's API reference. Only what the translation to the OpenAI hub format reads is
declared; unknown members of an object are ignored by msgspec (e.g. `cache_control`, `citations`), and
unknown top-level fields are looked at separately (see translate/anthropic_request_to_hub.py). Content blocks
are tagged unions on `type`: a block type not declared here fails to decode, and that failure becomes
a 400 naming the block, never a silent drop.
"""

from __future__ import annotations

import msgspec

# -- content blocks ------------------------------------------------------------------------------------


class Base64Source(msgspec.Struct, tag="base64", tag_field="type"):
    media_type: str
    data: str


class UrlSource(msgspec.Struct, tag="url", tag_field="type"):
    url: str


ImageSource = Base64Source | UrlSource


class TextBlock(msgspec.Struct, tag="text", tag_field="type"):
    text: str


class ImageBlock(msgspec.Struct, tag="image", tag_field="type"):
    source: ImageSource


class ToolUseBlock(msgspec.Struct, tag="tool_use", tag_field="type"):
    """A tool call the assistant made in an earlier turn; `input` is kept as raw JSON."""

    id: str
    name: str
    input: msgspec.Raw


class ToolResultBlock(msgspec.Struct, tag="tool_result", tag_field="type"):
    tool_use_id: str
    content: str | list[TextBlock | ImageBlock] = ""
    is_error: bool = False


class ThinkingBlock(msgspec.Struct, tag="thinking", tag_field="type"):
    thinking: str
    signature: str = ""


ContentBlock = TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock


class Message(msgspec.Struct):
    role: str
    content: str | list[ContentBlock]


# -- request options -----------------------------------------------------------------------------------


class Tool(msgspec.Struct):
    """A client tool (`type` absent or "custom"); server tools carry their own `type` and are refused."""

    name: str
    input_schema: msgspec.Raw = msgspec.Raw()  # empty when absent (`Raw | None` would accept null only)
    description: str | None = None
    type: str | None = None


class ToolChoice(msgspec.Struct):
    type: str
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class ThinkingConfig(msgspec.Struct):
    type: str
    budget_tokens: int | None = None


class OutputConfig(msgspec.Struct, forbid_unknown_fields=True):
    """`output_config`: the answer's effort and format. An unknown member fails to decode, so a 400
    names it rather than dropping what it asks for."""

    effort: str | None = None
    format: dict[str, msgspec.Raw] | None = None


class ContextEdit(msgspec.Struct):
    """One `context_management.edits[]` entry; only its type is read (`clear_thinking_*` or not)."""

    type: str


class ContextManagement(msgspec.Struct):
    edits: list[ContextEdit] = msgspec.field(default_factory=list)


class Metadata(msgspec.Struct):
    user_id: str | None = None


class MessagesRequest(msgspec.Struct):
    """`POST /v1/messages` (and, with `max_tokens` not required, `/v1/messages/count_tokens`)."""

    model: str
    messages: list[Message]
    max_tokens: int | None = None
    system: str | list[TextBlock] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stream: bool | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None
    metadata: Metadata | None = None
    output_config: OutputConfig | None = None
    context_management: ContextManagement | None = None


MESSAGES_FIELDS = frozenset(MessagesRequest.__struct_fields__)
"""Top-level fields the translation reads."""
