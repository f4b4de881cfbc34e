"""`GET` / `DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items`: stored responses,
read by their owner only (stored_responses/: another team's id is a 404, like one that never was)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson

from gatecore.auth.stage import AuthStage, client_secret
from gatecore.errors import InvalidRequest, MethodNotAllowed, NotFound
from gatecore.stored_responses import ResponseStore, StoredResponse, owner_of

PREFIXES = ("/v1/responses/", "/responses/")
MAX_ID_CHARS = 200
_JSON_HEADERS = [("content-type", "application/json")]


class StoredResponsesApi:
    """Answers the stored-responses routes for the caller's key."""

    __slots__ = ("auth", "responses")

    def __init__(self, auth: AuthStage, responses: ResponseStore):
        self.auth = auth
        self.responses = responses

    async def handle(self, scope: Any, proto: Any) -> None:
        """Answer one request (errors are raised as GatewayErrors, rendered in OpenAI's shape)."""
        key = await self.auth.authenticate(client_secret(scope.headers))
        path: str = scope.path
        rest = path[len(PREFIXES[0]) :] if path.startswith(PREFIXES[0]) else path[len(PREFIXES[1]) :]
        response_id, _, tail = rest.partition("/")
        if (
            not 0 < len(response_id) <= MAX_ID_CHARS
            or not response_id.isprintable()
            or tail not in ("", "input_items")
        ):
            raise NotFound(f"Unknown path '{path[:200]}'.")
        method = scope.method
        allowed = "GET, DELETE" if not tail else "GET"
        if method not in allowed.split(", "):
            error = MethodNotAllowed(f"Method {method[:20]} is not allowed here; use {allowed}.")
            error.headers = [("allow", allowed)]
            raise error
        owner = owner_of(key)
        if method == "DELETE":
            if not await self.responses.delete(owner, response_id):
                raise _not_found(response_id)
            body: Any = {"id": response_id, "object": "response.deleted", "deleted": True}
        else:
            stored = await self.responses.get(owner, response_id)
            if stored is None:
                raise _not_found(response_id)
            body = stored.response if not tail else _input_items(stored, scope.query_string)
        proto.response_bytes(200, _JSON_HEADERS, orjson.dumps(body))


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"No response with id '{response_id[:80]}' was found.", param="response_id")


def _input_items(stored: StoredResponse, query: str) -> dict[str, Any]:
    """The response's own input items as a list page (`limit` 1-100, default 20; `order` desc by
    default, as the reference; `after` an item id)."""
    params = dict(parse_qsl(query or "", keep_blank_values=True))
    limit_text = params.get("limit", "20")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
        raise InvalidRequest("limit: must be an integer from 1 to 100.", param="limit")
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order: must be 'asc' or 'desc'.", param="order")
    items = [
        item if not isinstance(item, dict) or "id" in item else {"id": f"{stored.id}_in{i}", **item}
        for i, item in enumerate(stored.input_items)
    ]
    if order == "desc":
        items.reverse()
    after = params.get("after")
    if after is not None:
        ids = [item.get("id") if isinstance(item, dict) else None for item in items]
        if after not in ids:
            raise InvalidRequest(f"after: no input item with id '{after[:80]}'.", param="after")
        items = items[ids.index(after) + 1 :]
    page = items[: int(limit_text)]
    first = page[0].get("id") if page and isinstance(page[0], dict) else None
    last = page[-1].get("id") if page and isinstance(page[-1], dict) else None
    return {
        "object": "list",
        "data": page,
        "first_id": first,
        "last_id": last,
        "has_more": len(items) > len(page),
    }
