"""`GET /v1/prompts/{name}/openapi.json`: a published prompt as a plain REST API, its variables the
request schema (the label's current version; `production`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from gatecore import __version__
from gatecore.errors import NotFound, StoreUnavailable
from gatecore.policy.key_policy import KeyPolicy
from gatecore.prompts.access import may_call
from gatecore.prompts.spec import PARAMS

if TYPE_CHECKING:
    from gatecore.prompts.stage import PromptStage

_PARAM_SCHEMA: dict[str, Any] = {
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "max_tokens": {"type": "integer", "minimum": 1},
    "max_completion_tokens": {"type": "integer", "minimum": 1},
    "seed": {"type": "integer"},
}


async def prompt_document(stage: PromptStage, key: KeyPolicy | None, name: str) -> bytes:
    """The OpenAPI 3.1 document of one prompt (404 for a prompt the key may not call)."""
    catalog = stage.catalog
    if catalog is None:
        raise StoreUnavailable("Prompts are unavailable: the store could not be opened.")
    head = await catalog.head(name)
    compiled = await catalog.resolve(head, None, 0, None)
    if not may_call(key, head, compiled):
        raise NotFound(f"No prompt '{name[:100]}'.", code="prompt_not_found")
    spec = compiled.spec
    body: dict[str, Any] = {
        "type": "object",
        "properties": {
            "variables": {**compiled.variables.schema, "type": "object"},
            "stream": {"type": "boolean", "default": False},
            "user": {"type": "string", "maxLength": 256},
            "messages": {
                "type": "array",
                "maxItems": 64,
                "items": {
                    "type": "object",
                    "properties": {"role": {"enum": ["user", "assistant"]}, "content": {"type": "string"}},
                    "required": ["role", "content"],
                },
            },
            **{p: _PARAM_SCHEMA.get(p, {}) for p in spec.overridable if p in PARAMS},
        },
    }
    if compiled.variables.required:
        body["required"] = ["variables"]
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": f"Prompt {name}",
            "version": f"{__version__}+v{compiled.version}",
            "description": spec.description or "",
        },
        "paths": {
            f"/v1/prompts/{name}": {
                "post": {
                    "summary": spec.description or f"Call the prompt {name}",
                    "parameters": [
                        {"name": "label", "in": "query", "schema": {"type": "string"}},
                        {"name": "version", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                    "responses": {
                        "200": {
                            "description": "An OpenAI chat completion (an event stream when `stream` is true); "
                            "`x-gatecore-prompt-version` names the version that ran.",
                            "headers": {"x-gatecore-prompt-version": {"schema": {"type": "integer"}}},
                        },
                        "400": {"description": "a variable is missing or ill-typed (named in `param`)"},
                        "401": {"description": "missing or invalid key"},
                        "404": {"description": "no such prompt, version or label"},
                    },
                    "security": [{"bearer": []}],
                }
            }
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
    return msgspec.json.encode(document)
