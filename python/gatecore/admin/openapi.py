"""The OpenAPI 3.1 document of the admin API, with schemas generated from the wire Structs."""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from gatecore import __version__
from gatecore.admin.access_requests import AccessApprove, AccessReject, AccessRequestCreate, AccessRequestOut
from gatecore.admin.bounds import bound_schemas
from gatecore.admin.cache_api import CachePurge, CachePurged, CacheStatsOut
from gatecore.admin.deployments_api import DeploymentsOut
from gatecore.admin.guardrails_api import GuardrailCreate, GuardrailList, GuardrailOut, GuardrailSpec
from gatecore.admin.openapi_prompts import prompt_components, prompt_paths
from gatecore.admin.prompts_api import LabelMove
from gatecore.admin.wire import (
    AuditOut,
    KeyCreate,
    KeyCreated,
    KeyOut,
    KeyRotate,
    KeyUpdate,
    TenantCreate,
    TenantOut,
    TenantUpdate,
)
from gatecore.ledger.repository import GROUPS, UsageGroup
from gatecore.ledger.runs import RunListed, RunRequest, RunSummary
from gatecore.prompts.spec import PromptSpec

_STRUCTS = (
    KeyCreate,
    KeyUpdate,
    KeyRotate,
    KeyOut,
    KeyCreated,
    TenantCreate,
    TenantUpdate,
    TenantOut,
    AuditOut,
    UsageGroup,
    DeploymentsOut,
    RunListed,
    RunSummary,
    RunRequest,
    CachePurge,
    CachePurged,
    CacheStatsOut,
    GuardrailCreate,
    GuardrailSpec,
    GuardrailOut,
    GuardrailList,
    AccessRequestCreate,
    AccessApprove,
    AccessReject,
    AccessRequestOut,
    PromptSpec,
    LabelMove,
)


# The answers take their policy fields from PolicyFields, whose defaults serve the request bodies; an
# answer always holds every field, so its schema says each is required and has no default.
_ANSWERS = ("KeyOut", "KeyCreated", "TenantOut")


def _every_field_present(schema: dict[str, Any]) -> None:
    schema["required"] = list(schema["properties"])
    for field in schema["properties"].values():
        field.pop("default", None)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _list_of(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"data": {"type": "array", "items": _ref(name)}},
        "required": ["data"],
    }


# Every error answer an operation can give, with why (router.py maps the errors to these).
_REASONS = {
    "400": "the body or a query parameter is malformed or out of its bounds (or the admin API is off)",
    "401": "missing or invalid key",
    "403": "role does not allow this",
    "404": "no such record",
    "409": "the change conflicts with stored data (a name taken, a tenant still in use, a revoked key)",
    "422": "well-formed, but names what is not there (a model, a team) or breaks a rule between levels",
    "503": "the store is unavailable",
}


def _op(
    summary: str, status: int, response: dict[str, Any] | None, body: str | None = None
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {}}
    op["responses"][str(status)] = {"description": "OK", **(_json(response) if response else {})}
    errors = ["400", "401", "403", "503"] + (["409", "422"] if body is not None else [])
    for code in errors:
        op["responses"][code] = {"description": _REASONS[code], **_json(_ref("Error"))}
    if body is not None:
        op["requestBody"] = {"required": True, **_json(_ref(body))}
    return op


def _with_errors(op: dict[str, Any], *codes: str) -> dict[str, Any]:
    for code in codes:
        op["responses"][code] = {"description": _REASONS[code], **_json(_ref("Error"))}
    return op


def _usage_params() -> list[dict[str, Any]]:
    time_schema = {
        "description": "RFC 3339 time or epoch seconds",
        "anyOf": [
            {"type": "string", "format": "date-time"},
            {"type": "string", "pattern": "^-?[0-9]{1,12}(\\.[0-9]{1,9})?$"},
        ],
    }
    return [
        {
            "name": "group_by",
            "in": "query",
            "schema": {"type": "string", "enum": list(GROUPS), "default": "key"},
        },
        {"name": "from", "in": "query", "schema": time_schema, "description": "inclusive"},
        {"name": "to", "in": "query", "schema": time_schema, "description": "exclusive"},
        {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}},
    ]


def _runs_paths(id_param: list[dict[str, Any]]) -> dict[str, Any]:
    """`/runs`, `/runs/{id}` and `/runs/{id}/requests` (admin/runs_api.py)."""
    unknown = {"description": "no such run (or none of its requests is the team_admin's team's)"}
    summary = _op(
        "A benchmark run's summary (a team_admin sees its team's requests)", 200, _ref("RunSummary")
    )
    summary["responses"]["404"] = {**unknown, **_json(_ref("Error"))}
    export = _op("Every request of a run with its timings, in arrival order, streamed", 200, None)
    export["responses"]["200"]["content"] = {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "run_id": {"type": "string"},
                    "data": {"type": "array", "items": _ref("RunRequest")},
                },
            }
        },
        "text/csv": {"schema": {"type": "string", "description": "a header row, then a row per request"}},
    }
    export["responses"]["404"] = {**unknown, **_json(_ref("Error"))}
    export["parameters"] = [
        {
            "name": "format",
            "in": "query",
            "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"},
        }
    ]
    limit = {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    }
    latest = _op(
        "The latest benchmark runs (x-gatecore-run-id or a key's run_id metadata)", 200, _list_of("RunListed")
    )
    latest["parameters"] = [limit]
    return {
        "/runs": {"get": latest},
        "/runs/{id}": {"parameters": id_param, "get": summary},
        "/runs/{id}/requests": {"parameters": id_param, "get": export},
    }


def _guardrail_paths(id_param: list[dict[str, Any]]) -> dict[str, Any]:
    """`/guardrails` and `/guardrails/{id}` (admin/guardrails_api.py); `{id}` is the guard's name."""
    return {
        "/guardrails": {
            "get": _op(
                "Every guard definition: the config's (read_only) and the stored ones a caller may see",
                200,
                _ref("GuardrailList"),
            ),
            "post": _op(
                "Define a guard (admin: any; team_admin: pii or prompt_injection of its own team)",
                201,
                _ref("GuardrailOut"),
                "GuardrailCreate",
            ),
        },
        "/guardrails/{id}": {
            "parameters": id_param,
            "get": _op("Read one guard definition", 200, _ref("GuardrailOut")),
            "put": _with_errors(
                _op("Replace a stored guard's definition", 200, _ref("GuardrailOut"), "GuardrailSpec"), "409"
            ),
            "delete": _with_errors(_op("Delete a stored guard no key or tenant names", 204, None), "409"),
        },
    }


def _audit_op() -> dict[str, Any]:
    op = _op("Recent admin actions, newest first", 200, _list_of("AuditOut"))
    op["parameters"] = [
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
        },
        {
            "name": "target_id",
            "in": "query",
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
            "description": "one record's",
        },
    ]
    return op


def _usage_op() -> dict[str, Any]:
    op = _op(
        "Usage totals per group from the ledger (a team_admin sees its team's); CSV with format=csv",
        200,
        _list_of("UsageGroup"),
    )
    op["responses"]["200"]["content"]["text/csv; charset=utf-8"] = {
        "schema": {
            "type": "string",
            "description": "a header row (the JSON field names), then a row per group",
        }
    }
    return op


def _access_request_paths(id_param: list[dict[str, Any]]) -> dict[str, Any]:
    """`/access-requests` (admin/access_requests.py): any key may ask and read its own requests."""
    decide = "an admin, or a team_admin for its team's requests"
    approve = _op(
        f"Approve: creates the requester's key ({decide})", 200, _ref("AccessRequestOut"), "AccessApprove"
    )
    reject = _op(f"Reject, with an optional reason ({decide})", 200, _ref("AccessRequestOut"), "AccessReject")
    for op in (approve, reject):
        op["requestBody"]["required"] = False
    return {
        "/access-requests": {
            "get": _op(
                "Access requests, newest first: all (admins), a team's (its keys), one's own (any key)",
                200,
                _list_of("AccessRequestOut"),
            ),
            "post": _op(
                "Ask for a key for models or prompts (any key)",
                201,
                _ref("AccessRequestOut"),
                "AccessRequestCreate",
            ),
        },
        "/access-requests/{id}": {
            "parameters": id_param,
            "get": _op(
                "One request; after approval its requester reads the key here once (`key`), then "
                "only `prefix`",
                200,
                _ref("AccessRequestOut"),
            ),
        },
        "/access-requests/{id}/approve": {"parameters": id_param, "post": approve},
        "/access-requests/{id}/reject": {"parameters": id_param, "post": reject},
    }


def _tenant_schemas(components: dict[str, Any]) -> None:
    """One create and one update schema per level: an org has no `org` or `team`, a team no `team`,
    a user no `org` (the router refuses them, even as null)."""
    for kind, without in (("Org", ("org", "team")), ("Team", ("team",)), ("User", ("org",))):
        for verb in ("Create", "Update"):
            schema = copy.deepcopy(components[f"Tenant{verb}"])
            for name in without:
                schema["properties"].pop(name, None)
            schema["title"] = f"{kind}{verb}"
            components[f"{kind}{verb}"] = schema
    del components["TenantCreate"], components["TenantUpdate"]


def openapi_document() -> dict[str, Any]:
    """The whole document (built once per worker, on first request)."""
    _, components = msgspec.json.schema_components(_STRUCTS, ref_template="#/components/schemas/{name}")
    for name in _ANSWERS:
        _every_field_present(components[name])
    bound_schemas(components)
    _tenant_schemas(components)
    for name in ("KeyCreate", "KeyUpdate", "AccessApprove"):
        for branch in components[name]["properties"]["expires_at"].get("anyOf", []):
            if branch.get("type") == "string":
                branch["format"] = "date-time"
    components["Error"] = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {k: {"type": ["string", "null"]} for k in ("message", "type", "param", "code")},
            }
        },
    }
    id_param = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    paths: dict[str, Any] = {
        "/keys": {
            "get": _op("List keys (a team_admin sees its team's)", 200, _list_of("KeyOut")),
            "post": _op(
                "Create a key; the answer holds the secret, shown only once",
                201,
                _ref("KeyCreated"),
                "KeyCreate",
            ),
        },
        "/keys/{id}": {
            "parameters": id_param,
            "get": _op("Read a key", 200, _ref("KeyOut")),
            "patch": _op("Change a key", 200, _ref("KeyOut"), "KeyUpdate"),
            "delete": _op("Revoke a key", 200, _ref("KeyOut")),
        },
        "/keys/{id}/rotate": {
            "parameters": id_param,
            "post": _op("New secret; the old one works for grace_s", 200, _ref("KeyCreated"), "KeyRotate"),
        },
        "/audit": {"get": _audit_op()},
        "/deployments": {
            "get": _op(
                "Every model's deployments with the routing state of the worker that answers (breaker, "
                "health checks, ejection, quota, in-flight, latency, engine load); admin and viewer keys",
                200,
                _ref("DeploymentsOut"),
            )
        },
        "/usage": {"parameters": _usage_params(), "get": _usage_op()},
        "/cache": {
            "get": _with_errors(
                _op(
                    "The response cache's figures, of the worker that answers; global callers",
                    200,
                    _ref("CacheStatsOut"),
                ),
                "404",
            )
        },
        "/cache/purge": {
            "post": _with_errors(
                _op(
                    "Drop cached answers by namespace, model and age (a team's key: its team's namespace only)",
                    200,
                    _ref("CachePurged"),
                    "CachePurge",
                ),
                "404",
            )
        },
    }
    paths.update(_runs_paths(id_param))
    paths.update(_guardrail_paths(id_param))
    paths.update(_access_request_paths(id_param))
    components.update(prompt_components())
    paths.update(prompt_paths(_op, _ref, _list_of, _with_errors))
    for plural, kind in (("orgs", "Org"), ("teams", "Team"), ("users", "User")):
        paths[f"/{plural}"] = {
            "get": _op(f"List {plural}", 200, _list_of("TenantOut")),
            "post": _op(f"Create one of the {plural}", 201, _ref("TenantOut"), f"{kind}Create"),
        }
        paths[f"/{plural}/{{id}}"] = {
            "parameters": id_param,
            "get": _op("Read one, by id or name", 200, _ref("TenantOut")),
            "patch": _op("Change one", 200, _ref("TenantOut"), f"{kind}Update"),
            "delete": _with_errors(_op("Delete one that has no members or keys", 204, None), "409"),
        }
    for path, item in paths.items():
        if "{id}" in path:
            for method in ("get", "patch", "delete", "post", "put"):
                if method in item:
                    _with_errors(item[method], "404")
    return {
        "openapi": "3.1.0",
        "info": {"title": "gatecore admin API", "version": __version__},
        "servers": [{"url": "/admin/v1"}],
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
