"""The prompt routes' part of the admin API's OpenAPI document (admin/prompts_api.py).

A version's body schema is generated from `PromptSpec` (what the decoder checks). Some of what
publishing checks no JSON Schema can say: that the templates render with the declared variables,
that every placeholder is declared, that the parameters are known ones, that a chain's steps name
existing templates and do not loop. A body valid by the schema may therefore get a 400 naming
what is wrong, documented as such on those operations.
"""

from __future__ import annotations

from typing import Any

from gatecore.prompts.spec import NAME_PATTERN

_NOT_RENDERED = (
    "the body is malformed or out of bounds, or the prompt does not compile: a template that does not "
    "render, a placeholder not declared in `variables`, an unknown parameter, a chain that loops"
)
_TIME = {
    "description": "RFC 3339 time or epoch seconds",
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "string", "pattern": "^-?[0-9]{1,12}(\\.[0-9]{1,9})?$"},
    ],
}
_VERSION = {"type": "string", "pattern": "^[1-9][0-9]{0,5}$", "description": "a version number"}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_WHEN = {"type": "string", "format": "date-time"}


def _obj(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
    }


def prompt_components() -> dict[str, Any]:
    """The answers' schemas (the request bodies' come from the Structs)."""
    weights = {"type": "object", "additionalProperties": {"type": "number"}}
    head = {
        "name": {"type": "string"},
        "kind": {"type": "string", "enum": ["template", "chain"]},
        "team_id": _NULLABLE_TEXT,
        "latest": {"type": "integer"},
        "created_by": {"type": "string"},
        "created_at": _WHEN,
        "updated_at": _WHEN,
        "labels": {
            "type": "object",
            "additionalProperties": _obj({"versions": weights, "sticky": _NULLABLE_TEXT}),
        },
    }
    listed_version = _obj(
        {
            "version": {"type": "integer"},
            "created_by": {"type": "string"},
            "created_at": _WHEN,
            "description": _NULLABLE_TEXT,
        }
    )
    figures = {
        "version": {"type": "integer"},
        "requests": {"type": "integer"},
        "errors": {"type": "integer"},
        "latency_ms_mean": {"type": ["number", "null"]},
        "latency_ms_max": {"type": ["number", "null"]},
        "ttft_ms_mean": {"type": ["number", "null"]},
        "input_tokens": {"type": "integer"},
        "output_tokens": {"type": "integer"},
        "cost_usd": {"type": "number"},
    }
    return {
        "PromptPublished": _obj(
            {
                "name": {"type": "string"},
                "version": {"type": "integer"},
                "kind": {"type": "string", "enum": ["template", "chain"]},
                "team_id": _NULLABLE_TEXT,
                "labels": {"type": "array", "items": {"type": "string"}},
                "unchanged": {"type": "boolean"},
            },
            optional=("labels", "unchanged"),
        ),
        "PromptHeadOut": _obj(head),
        "PromptOut": _obj({**head, "versions": {"type": "array", "items": listed_version}}),
        "PromptVersionOut": _obj(
            {
                "name": {"type": "string"},
                "version": {"type": "integer"},
                "created_by": {"type": "string"},
                "created_at": _WHEN,
                "spec": {"type": "object", "description": "the version as published"},
            }
        ),
        "LabelMoved": _obj(
            {
                "name": {"type": "string"},
                "label": {"type": "string"},
                "versions": weights,
                "sticky": _NULLABLE_TEXT,
            }
        ),
        "PromptDiff": _obj(
            {
                "name": {"type": "string"},
                "from": {"type": "integer"},
                "to": {"type": "integer"},
                "diff": {"type": "string", "description": "unified diff of the two versions' specs"},
            }
        ),
        "PromptStats": _obj({"name": {"type": "string"}, "data": {"type": "array", "items": _obj(figures)}}),
    }


def prompt_paths(op: Any, ref: Any, list_of: Any, with_errors: Any) -> dict[str, Any]:
    """`/prompts…` (the document's own helpers passed in: `_op`, `_ref`, `_list_of`, `_with_errors`)."""
    error = {"content": {"application/json": {"schema": ref("Error")}}}
    name = [
        {
            "name": "name",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": NAME_PATTERN},
        }
    ]

    def compiles(operation: dict[str, Any]) -> dict[str, Any]:
        operation["responses"]["400"]["description"] = _NOT_RENDERED
        operation["responses"]["413"] = {"description": "the body is over 1 MiB", **error}
        return operation

    move = compiles(
        op(
            "Point a label at a version, or split it by weight (a rollback is moving it back)",
            200,
            ref("LabelMoved"),
            "LabelMove",
        )
    )
    move["responses"]["400"]["description"] = (
        "the body is malformed, names neither or both of `version` and `versions`, or its weights sum to 0"
    )
    label_param = {
        "name": "label",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"},
    }
    diff = op("A unified diff of two versions (default: the last two)", 200, ref("PromptDiff"))
    diff["parameters"] = [
        {"name": "from", "in": "query", "schema": _VERSION},
        {"name": "to", "in": "query", "schema": _VERSION},
    ]
    stats = op(
        "Per version over a time range: requests, errors, latency, TTFT, tokens and cost",
        200,
        ref("PromptStats"),
    )
    stats["parameters"] = [
        {"name": "from", "in": "query", "schema": _TIME, "description": "inclusive"},
        {"name": "to", "in": "query", "schema": _TIME, "description": "exclusive"},
    ]
    paths: dict[str, Any] = {
        "/prompts": {
            "get": op(
                "List prompts (a team's key: its team's and the global ones)", 200, list_of("PromptHeadOut")
            ),
            "post": compiles(
                op(
                    "Publish a prompt: its first version (labelled production), or its next",
                    201,
                    ref("PromptPublished"),
                    "PromptSpec",
                )
            ),
        },
        "/prompts/{name}": {
            "parameters": name,
            "get": op("A prompt with its versions and labels", 200, ref("PromptOut")),
        },
        "/prompts/{name}/versions": {
            "parameters": name,
            "post": compiles(op("Publish the next version", 201, ref("PromptPublished"), "PromptSpec")),
        },
        "/prompts/{name}/versions/{version}": {
            "parameters": [*name, {"name": "version", "in": "path", "required": True, "schema": _VERSION}],
            "get": op("One version as published", 200, ref("PromptVersionOut")),
        },
        "/prompts/{name}/labels/{label}": {
            "parameters": [*name, label_param],
            "put": move,
        },
        "/prompts/{name}/diff": {"parameters": name, "get": diff},
        "/prompts/{name}/stats": {"parameters": name, "get": stats},
    }
    for path, item in paths.items():
        if path != "/prompts":
            for method in ("get", "post", "put"):
                if method in item:
                    with_errors(item[method], "404")
    return paths
