"""Gemini `generationConfig` → the OpenAI chat request's sampling, output and reasoning fields, and
Gemini's OpenAPI-subset schemas (function parameters, `responseSchema`) as JSON Schema.

- temperature, topP, topK, maxOutputTokens (1-100,000,000), stopSequences (at most 5), candidateCount
  (1-8, as `n`), seed and the penalties map one to one;
- `responseMimeType: application/json` becomes `response_format` `json_object`, or `json_schema`
  with `responseJsonSchema` as it is or `responseSchema` with its capitalised types in lower case;
  other MIME types and non-TEXT `responseModalities` are refused;
- `thinkingConfig.thinkingLevel` is the `reasoning_effort`; a `thinkingBudget` maps to one
  (< 4096 low, < 16384 medium, else high; 0 and -1 set nothing).
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from gatecore.api.gemini import GenerationConfig
from gatecore.errors import InvalidRequest

MAX_CANDIDATES = 8  # the Gemini API's own bound on candidateCount
MAX_OUTPUT_TOKENS = 100_000_000
_EFFORT_BOUNDS = ((4096, "low"), (16384, "medium"))
_LEVELS = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high"}


def generation_fields(config: GenerationConfig, doc: dict[str, Any]) -> None:
    """Put the OpenAI counterparts of `config` into `doc`; 400 naming the field otherwise."""
    if config.temperature is not None:
        doc["temperature"] = config.temperature
    if config.top_p is not None:
        doc["top_p"] = config.top_p
    if config.top_k is not None:
        doc["top_k"] = config.top_k  # not OpenAI's; vLLM, SGLang and others read it
    if config.max_output_tokens is not None:
        if not 1 <= config.max_output_tokens <= MAX_OUTPUT_TOKENS:
            raise InvalidRequest(
                f"generationConfig.maxOutputTokens: must be between 1 and {MAX_OUTPUT_TOKENS}.",
                param="generationConfig.maxOutputTokens",
            )
        doc["max_tokens"] = config.max_output_tokens
    if config.stop_sequences:
        if len(config.stop_sequences) > 5:  # Gemini's own bound
            raise InvalidRequest(
                "generationConfig.stopSequences: at most 5 stop sequences.",
                param="generationConfig.stopSequences",
            )
        doc["stop"] = config.stop_sequences
    if config.candidate_count is not None:
        if not 1 <= config.candidate_count <= MAX_CANDIDATES:
            raise InvalidRequest(
                f"generationConfig.candidateCount: must be between 1 and {MAX_CANDIDATES}.",
                param="generationConfig.candidateCount",
            )
        if config.candidate_count > 1:
            doc["n"] = config.candidate_count
    if config.presence_penalty is not None:
        doc["presence_penalty"] = config.presence_penalty
    if config.frequency_penalty is not None:
        doc["frequency_penalty"] = config.frequency_penalty
    if config.seed is not None:
        doc["seed"] = config.seed
    if config.response_modalities and any(m.upper() != "TEXT" for m in config.response_modalities):
        raise InvalidRequest(
            "generationConfig.responseModalities: only TEXT can be translated for this model.",
            param="generationConfig.responseModalities",
        )
    _response_format(config, doc)
    if config.thinking_config is not None:
        _thinking(config, doc)


def _response_format(config: GenerationConfig, doc: dict[str, Any]) -> None:
    mime = config.response_mime_type
    schema: Any = None
    if config.response_json_schema:
        schema = config.response_json_schema
    elif config.response_schema:
        schema = json_schema(config.response_schema, "generationConfig.responseSchema")
    if mime in (None, "text/plain"):
        if schema is not None:
            raise InvalidRequest(
                "generationConfig.responseMimeType: a response schema needs 'application/json'.",
                param="generationConfig.responseMimeType",
            )
        return
    if mime != "application/json":
        raise InvalidRequest(
            f"generationConfig.responseMimeType: '{mime[:60]}' cannot be translated for this model.",
            param="generationConfig.responseMimeType",
        )
    if schema is None:
        doc["response_format"] = {"type": "json_object"}
    else:
        doc["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": schema},
        }


def _thinking(config: GenerationConfig, doc: dict[str, Any]) -> None:
    thinking = config.thinking_config
    assert thinking is not None
    level = thinking.level()
    if level is not None:
        effort = _LEVELS.get(level.lower())
        if effort is None:
            raise InvalidRequest(
                f"generationConfig.thinkingConfig.thinkingLevel: unknown level '{level[:40]}'.",
                param="generationConfig.thinkingConfig.thinkingLevel",
            )
        doc["reasoning_effort"] = effort
        return
    budget = thinking.budget()
    if budget is None or budget in (0, -1):  # off, or the model's own choice: nothing to ask for
        return
    if budget < -1 or budget > MAX_OUTPUT_TOKENS:
        raise InvalidRequest(
            "generationConfig.thinkingConfig.thinkingBudget: must be -1, 0 or a positive token count.",
            param="generationConfig.thinkingConfig.thinkingBudget",
        )
    doc["reasoning_effort"] = next((effort for bound, effort in _EFFORT_BOUNDS if budget < bound), "high")


def json_schema(raw: msgspec.Raw, where: str) -> Any:
    """Gemini's OpenAPI-subset schema as JSON Schema: its capitalised types in lower case."""
    try:
        schema = orjson.loads(bytes(raw))
    except orjson.JSONDecodeError:
        raise InvalidRequest(f"{where}: not valid JSON.", param=where) from None
    return _lower_types(schema, 0, where)


def _lower_types(node: Any, depth: int, where: str) -> Any:
    if depth > 64:
        raise InvalidRequest(f"{where}: the schema is nested too deeply.", param=where)
    if isinstance(node, dict):
        out = {key: _lower_types(value, depth + 1, where) for key, value in node.items()}
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = kind.lower()
        return out
    if isinstance(node, list):
        return [_lower_types(value, depth + 1, where) for value in node]
    return node
