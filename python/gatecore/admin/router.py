"""Dispatch of `/admin/v1/…`: authenticate the caller, decode the body, call the handler, answer JSON.

Every route needs an admin-role key (the master key is one). Errors use the OpenAI error shape like the
rest of the gateway, with 400 (bad body), 401, 403, 404, 405, 409, 422 and 503 (store down). Answers
are JSON, CSV (usage reports) or, for run exports, parts written as they are read (`StreamAnswer`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import msgspec

from gatecore.admin.access import Caller
from gatecore.admin.access_requests import AccessApprove, AccessReject, AccessRequestCreate, AccessRequestsApi
from gatecore.admin.bounds import decode_body
from gatecore.admin.cache_api import CacheApi, CachePurge
from gatecore.admin.convert import to_datetime
from gatecore.admin.deployments_api import DeploymentsApi
from gatecore.admin.guardrails_api import GuardrailCreate, GuardrailsApi, GuardrailSpec
from gatecore.admin.keys_api import KeysApi
from gatecore.admin.openapi import openapi_document
from gatecore.admin.prompts_api import PromptsApi
from gatecore.admin.runs_api import RunsApi, StreamAnswer
from gatecore.admin.tenants_api import TenantsApi
from gatecore.admin.usage_api import TextAnswer, UsageApi
from gatecore.admin.wire import AuditOut, KeyCreate, KeyRotate, KeyUpdate, ListOf, TenantCreate, TenantUpdate
from gatecore.auth.stage import AuthStage
from gatecore.cache.stage import Cache
from gatecore.errors import InvalidRequest, MethodNotAllowed, NotFound
from gatecore.identity.records import ORG, TEAM, USER
from gatecore.identity.repository import IdentityRepository
from gatecore.ledger.repository import LedgerRepository
from gatecore.ledger.runs import RunsRepository
from gatecore.policy.key_policy import KeyPolicy

PREFIX = "/admin/v1"
# The routes any key may call (a developer asking for access), not only admin-role keys.
MEMBER_PATH = "/access-requests"
JSON = "application/json"
MAX_BODY = 1024 * 1024
_ID = r"([^/]{1,200})"

# The query parameters of each route that takes any (by path pattern); the others take none.
QUERY: dict[str, frozenset[str]] = {
    "/audit": frozenset(("limit", "target_id")),
    "/usage": frozenset(("group_by", "from", "to", "format")),
    "/runs": frozenset(("limit",)),
    f"/runs/{_ID}/requests": frozenset(("format",)),
    f"/prompts/{_ID}/diff": frozenset(("from", "to")),
    f"/prompts/{_ID}/stats": frozenset(("from", "to")),
}

Handler = Callable[[Caller, tuple[str, ...], bytes, dict[str, list[str]]], Awaitable[Any]]


def _decode(kind: type[Any], body: bytes, without: tuple[str, ...] = ()) -> Any:
    """A request body as `kind`, within the bounds the OpenAPI document states (admin/bounds.py)."""
    return decode_body(kind, body, without=without)


class AdminApi:
    """The admin API of one worker."""

    def __init__(
        self,
        repository: IdentityRepository,
        auth: AuthStage,
        models: frozenset[str],
        grace_s: float,
        deployments: DeploymentsApi | None = None,
        cache: Cache | None = None,
        prompts: PromptsApi | None = None,
        guardrails: GuardrailsApi | None = None,
    ):
        self.auth = auth
        self.repository = repository
        keys = KeysApi(repository, models, grace_s, auth.refresh_key)
        usage = UsageApi(LedgerRepository(repository.store))
        runs = RunsApi(RunsRepository(repository.store))
        # (method, path pattern, status on success, handler)
        routes: list[tuple[str, str, int, Handler]] = [
            ("GET", "/keys", 200, lambda c, p, b, q: keys.index(c)),
            ("POST", "/keys", 201, lambda c, p, b, q: keys.create(c, _decode(KeyCreate, b))),
            ("GET", f"/keys/{_ID}", 200, lambda c, p, b, q: keys.get(c, p[0])),
            ("PATCH", f"/keys/{_ID}", 200, lambda c, p, b, q: keys.update(c, p[0], _decode(KeyUpdate, b))),
            ("DELETE", f"/keys/{_ID}", 200, lambda c, p, b, q: keys.revoke(c, p[0])),
            ("POST", f"/keys/{_ID}/rotate", 200, lambda c, p, b, q: keys.rotate(c, p[0], _rotate(b))),
            ("GET", "/audit", 200, self._audit),
            ("GET", "/openapi.json", 200, _document),
            ("GET", "/usage", 200, lambda c, p, b, q: usage.report(c, q)),
            ("GET", "/runs", 200, lambda c, p, b, q: runs.index(c, q)),
            ("GET", f"/runs/{_ID}", 200, lambda c, p, b, q: runs.summary(c, p[0])),
            ("GET", f"/runs/{_ID}/requests", 200, lambda c, p, b, q: runs.requests(c, p[0], q)),
        ]
        cache_api = CacheApi(cache)
        routes.append(("GET", "/cache", 200, lambda c, p, b, q: cache_api.stats(c)))
        routes.append(
            ("POST", "/cache/purge", 200, lambda c, p, b, q: cache_api.purge(c, _decode(CachePurge, b)))
        )
        requests = AccessRequestsApi(repository, models)
        self.access_requests = requests
        routes += [
            ("GET", MEMBER_PATH, 200, lambda c, p, b, q: requests.index(c)),
            (
                "POST",
                MEMBER_PATH,
                201,
                lambda c, p, b, q: requests.create(c, _decode(AccessRequestCreate, b)),
            ),
            ("GET", f"{MEMBER_PATH}/{_ID}", 200, lambda c, p, b, q: requests.get(c, p[0])),
            (
                "POST",
                f"{MEMBER_PATH}/{_ID}/approve",
                200,
                lambda c, p, b, q: requests.approve(c, p[0], _optional(AccessApprove, b)),
            ),
            (
                "POST",
                f"{MEMBER_PATH}/{_ID}/reject",
                200,
                lambda c, p, b, q: requests.reject(c, p[0], _optional(AccessReject, b)),
            ),
        ]
        if deployments is not None:
            routes.append(("GET", "/deployments", 200, lambda c, p, b, q: deployments.index(c)))
        for kind in (ORG, TEAM, USER):
            routes += _tenant_routes(TenantsApi(repository, kind, models))
        if prompts is not None:
            routes += _prompt_routes(prompts)
        if guardrails is not None:
            routes += _guardrail_routes(guardrails)
            keys.guard_owners = guardrails.stored.owners
        self._routes = [
            (method, re.compile(pattern + "$"), status, handler, QUERY.get(pattern, frozenset()))
            for method, pattern, status, handler in routes
        ]

    def match(
        self, method: str, path: str, query: dict[str, list[str]] | None = None
    ) -> tuple[int, Handler, tuple[str, ...]]:
        """The handler of `method path` (path without the /admin/v1 prefix); 404/405 otherwise, and
        400 for a query parameter the route does not have (a typo must not be silently ignored)."""
        allowed: list[str] = []
        for route_method, pattern, status, handler, names in self._routes:
            found = pattern.match(path)
            if found is None:
                continue
            if route_method == method:
                unknown = sorted(set(query or ()) - names)
                if unknown:
                    raise InvalidRequest(
                        f"Unknown query parameter '{unknown[0][:50]}'"
                        + (
                            f"; this path takes {', '.join(sorted(names))}."
                            if names
                            else "; this path takes none."
                        ),
                        param=unknown[0][:50],
                    )
                return status, handler, found.groups()
            allowed.append(route_method)
        if allowed:
            error = MethodNotAllowed(f"Method {method[:20]} is not allowed here; use {', '.join(allowed)}.")
            error.headers = [("allow", ", ".join(allowed))]
            raise error
        raise NotFound(f"Unknown admin path '{(PREFIX + path)[:200]}'.")

    async def caller(self, secret: str | None, path: str = "") -> Caller:
        """Who is calling (401 for a missing or unknown key): asked before the body is read, so an
        unknown caller's upload is never read. What the caller may do is each handler's check.
        `path` (without the prefix): a key without an admin role may call the access-request routes."""
        return self.caller_of(await self.auth.authenticate(secret), path)

    def caller_of(self, policy: KeyPolicy | None, path: str) -> Caller:
        """The caller of `path` with `policy` (a key's, or a console session's)."""
        if policy is None:
            # Auth is off (no key of any kind is configured): the admin API stays closed.
            raise InvalidRequest(
                "The admin API needs a master key: set auth.master_key.", code="admin_disabled"
            )
        return Caller(policy, member=path == MEMBER_PATH or path.startswith(MEMBER_PATH + "/"))

    async def handle(
        self, caller: Caller, method: str, path: str, query: str, body: bytes
    ) -> tuple[int, bytes | AsyncIterator[bytes], str]:
        """Status, body and content type of one admin request of `caller` (JSON, CSV for usage
        reports, or the parts of a run export to write as they come); raises GatewayError for the
        error answers."""
        parsed = parse_qs(query, keep_blank_values=True)
        status, handler, params = self.match(method, path, parsed)
        empty = next((name for name, values in parsed.items() if "" in values), None)
        if empty is not None:
            # Every parameter of the API has a type or a set of values, and "" is none of them: a
            # given-but-empty one is refused, not taken for absent (the default).
            raise InvalidRequest(
                f"Query parameter '{empty[:50]}' is empty.", param=empty[:50], code="invalid_query"
            )
        result = await handler(caller, params, body, parsed)
        if isinstance(result, TextAnswer):
            return status, result.body, result.content_type
        if isinstance(result, StreamAnswer):
            return status, result.parts, result.content_type
        return status, b"" if result is None else msgspec.json.encode(result), JSON

    async def _audit(
        self, caller: Caller, params: tuple[str, ...], body: bytes, query: dict[str, list[str]]
    ) -> ListOf:
        # The log names every team's keys and tenants: a key confined to a team reads none of it.
        caller.require_global("the audit log")
        try:
            limit = int(query.get("limit", ["100"])[-1])
        except ValueError:
            raise InvalidRequest("'limit' must be an integer.", param="limit") from None
        if not 1 <= limit <= 1000:  # SQL's LIMIT -1 would be no limit at all
            raise InvalidRequest("'limit' must be between 1 and 1000.", param="limit")
        target = query.get("target_id", [None])[-1]
        if target is not None and len(target) > 200:  # ids are short; the document says 200
            raise InvalidRequest("'target_id' is longer than 200 characters.", param="target_id")
        rows = await self.repository.audit(limit, target)
        return ListOf([AuditOut(**{**row, "at": to_datetime(row["at"])}) for row in rows])


# Fields of the shared tenant bodies that a level does not have (an org has no parent; a team's is
# an org, a user's a team): refused even when null, as the per-level schemas of the document say.
NOT_FIELDS = {ORG: ("org", "team"), TEAM: ("team",), USER: ("org",)}


def _tenant_routes(api: TenantsApi) -> list[tuple[str, str, int, Handler]]:
    plural = f"/{api.kind}s"
    without = NOT_FIELDS[api.kind]
    return [
        ("GET", plural, 200, lambda c, p, b, q: api.index(c)),
        ("POST", plural, 201, lambda c, p, b, q: api.create(c, _decode(TenantCreate, b, without))),
        ("GET", f"{plural}/{_ID}", 200, lambda c, p, b, q: api.get(c, p[0])),
        (
            "PATCH",
            f"{plural}/{_ID}",
            200,
            lambda c, p, b, q: api.update(c, p[0], _decode(TenantUpdate, b, without)),
        ),
        ("DELETE", f"{plural}/{_ID}", 204, lambda c, p, b, q: api.delete(c, p[0])),
    ]


def _prompt_routes(api: PromptsApi) -> list[tuple[str, str, int, Handler]]:
    one = f"/prompts/{_ID}"
    return [
        ("GET", "/prompts", 200, lambda c, p, b, q: api.index(c)),
        ("POST", "/prompts", 201, lambda c, p, b, q: api.publish(c, None, b)),
        ("GET", one, 200, lambda c, p, b, q: api.get(c, p[0])),
        ("POST", f"{one}/versions", 201, lambda c, p, b, q: api.publish(c, p[0], b)),
        ("GET", f"{one}/versions/{_ID}", 200, lambda c, p, b, q: api.version(c, p[0], p[1])),
        ("PUT", f"{one}/labels/{_ID}", 200, lambda c, p, b, q: api.move_label(c, p[0], p[1], b)),
        ("GET", f"{one}/diff", 200, lambda c, p, b, q: api.diff(c, p[0], q)),
        ("GET", f"{one}/stats", 200, lambda c, p, b, q: api.stats(c, p[0], q)),
    ]


def _guardrail_routes(api: GuardrailsApi) -> list[tuple[str, str, int, Handler]]:
    one = f"/guardrails/{_ID}"
    return [
        ("GET", "/guardrails", 200, lambda c, p, b, q: api.index(c)),
        ("POST", "/guardrails", 201, lambda c, p, b, q: api.create(c, _decode(GuardrailCreate, b))),
        ("GET", one, 200, lambda c, p, b, q: api.get(c, p[0])),
        ("PUT", one, 200, lambda c, p, b, q: api.update(c, p[0], _decode(GuardrailSpec, b))),
        ("DELETE", one, 204, lambda c, p, b, q: api.delete(c, p[0])),
    ]


def _optional(kind: type[Any], body: bytes) -> Any:
    """A body that may be left out (every field optional)."""
    return kind() if not body.strip() else _decode(kind, body)


def _rotate(body: bytes) -> KeyRotate:
    return KeyRotate() if not body.strip() else _decode(KeyRotate, body)


_DOCUMENT: bytes | None = None


async def _document(
    caller: Caller, params: tuple[str, ...], body: bytes, query: dict[str, list[str]]
) -> msgspec.Raw:
    global _DOCUMENT
    if _DOCUMENT is None:
        _DOCUMENT = msgspec.json.encode(openapi_document())
    return msgspec.Raw(_DOCUMENT)
