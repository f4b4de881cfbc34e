"""The fields of Google's Gemini API requests (`generateContent`, `streamGenerateContent`,
`countTokens`), written from its API reference, in the JSON names the SDKs send (camelCase).

Only what the translation to the OpenAI hub format reads is declared. A part is one object with one
data member set (`text`, `inlineData`, `functionCall`, ...); unknown members of a part or an object
(`thoughtSignature`, `videoMetadata`) are ignored by msgspec, and parts that carry none of the
declared data members are refused by the translation with a 400 naming the part. A raw JSON member
left out is an empty `Raw` (`Raw | None` would accept only null).
"""

from __future__ import annotations

import msgspec


class Blob(msgspec.Struct, rename={"mime_type": "mimeType", "mime_type_snake": "mime_type"}):
    """Inline bytes; the Python SDK spells the type `mime_type` (the API takes both spellings)."""

    data: str  # base64
    mime_type: str | None = None
    mime_type_snake: str | None = None

    def media_type(self) -> str:
        return self.mime_type or self.mime_type_snake or ""


class FileData(msgspec.Struct, rename="camel"):
    file_uri: str
    mime_type: str | None = None


class FunctionCall(msgspec.Struct):
    name: str
    args: msgspec.Raw = msgspec.Raw()  # an object; empty when absent
    id: str | None = None


class FunctionResponse(msgspec.Struct):
    name: str
    response: msgspec.Raw = msgspec.Raw()
    id: str | None = None


class Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool | None = None
    thought_signature: str | None = None  # Gemini's opaque reasoning state: meaningless to other models
    inline_data: Blob | None = None
    file_data: FileData | None = None
    function_call: FunctionCall | None = None
    function_response: FunctionResponse | None = None
    executable_code: msgspec.Raw = msgspec.Raw()
    code_execution_result: msgspec.Raw = msgspec.Raw()


class Content(msgspec.Struct):
    parts: list[Part] = msgspec.field(default_factory=list)
    role: str | None = None


class FunctionDeclaration(msgspec.Struct, rename="camel"):
    name: str
    description: str | None = None
    parameters: msgspec.Raw = msgspec.Raw()  # Gemini's OpenAPI subset (types in capitals)
    parameters_json_schema: msgspec.Raw = msgspec.Raw()  # plain JSON Schema


class Tool(msgspec.Struct, rename="camel", forbid_unknown_fields=False):
    """One tool entry: function declarations, or a Google-run tool (refused by name)."""

    function_declarations: list[FunctionDeclaration] | None = None
    google_search: msgspec.Raw = msgspec.Raw()
    google_search_retrieval: msgspec.Raw = msgspec.Raw()
    code_execution: msgspec.Raw = msgspec.Raw()
    url_context: msgspec.Raw = msgspec.Raw()
    file_search: msgspec.Raw = msgspec.Raw()
    computer_use: msgspec.Raw = msgspec.Raw()
    google_maps: msgspec.Raw = msgspec.Raw()


class FunctionCallingConfig(msgspec.Struct, rename="camel"):
    mode: str | None = None
    allowed_function_names: list[str] | None = None


class ToolConfig(msgspec.Struct, rename="camel"):
    function_calling_config: FunctionCallingConfig | None = None


class ThinkingConfig(
    msgspec.Struct,
    rename={
        "include_thoughts": "includeThoughts",
        "thinking_budget": "thinkingBudget",
        "thinking_level": "thinkingLevel",
        "include_thoughts_snake": "include_thoughts",
        "thinking_budget_snake": "thinking_budget",
        "thinking_level_snake": "thinking_level",
    },
):
    """The API takes protobuf's JSON names in both spellings; the Python SDK sends these in snake_case."""

    include_thoughts: bool | None = None
    thinking_budget: int | None = None
    thinking_level: str | None = None
    include_thoughts_snake: bool | None = None
    thinking_budget_snake: int | None = None
    thinking_level_snake: str | None = None

    def includes_thoughts(self) -> bool:
        return bool(self.include_thoughts or self.include_thoughts_snake)

    def budget(self) -> int | None:
        return self.thinking_budget if self.thinking_budget is not None else self.thinking_budget_snake

    def level(self) -> str | None:
        return self.thinking_level or self.thinking_level_snake


class GenerationConfig(msgspec.Struct, rename="camel"):
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_output_tokens: int | None = None
    stop_sequences: list[str] | None = None
    candidate_count: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    response_mime_type: str | None = None
    response_schema: msgspec.Raw = msgspec.Raw()
    response_json_schema: msgspec.Raw = msgspec.Raw()
    thinking_config: ThinkingConfig | None = None
    response_modalities: list[str] | None = None
    response_logprobs: bool | None = None
    logprobs: int | None = None


class GenerateContentRequest(msgspec.Struct, rename="camel"):
    """`POST /v1beta/models/{model}:generateContent` (and the streamed and counting methods)."""

    contents: list[Content] = msgspec.field(default_factory=list)
    system_instruction: Content | None = None
    tools: list[Tool] | None = None
    tool_config: ToolConfig | None = None
    generation_config: GenerationConfig | None = None
    model: str | None = None  # inside countTokens' generateContentRequest


class CountTokensRequest(msgspec.Struct, rename="camel"):
    """`POST /v1beta/models/{model}:countTokens`: bare `contents` or a whole `generateContentRequest`."""

    contents: list[Content] | None = None
    generate_content_request: GenerateContentRequest | None = None


REQUEST_FIELDS = frozenset(GenerateContentRequest.__struct_encode_fields__)
"""Top-level JSON names the translation reads."""
