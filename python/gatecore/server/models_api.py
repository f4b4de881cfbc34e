"""`GET /v1/models` and `GET /v1/models/{id}` in OpenAI's list and model shapes."""

from __future__ import annotations

import time

import orjson

from gatecore.auth.policy import KeyPolicy
from gatecore.errors import NotFound
from gatecore.routing.table import ModelRoute, RouteTable

_CREATED = int(time.time())


def _model_object(route: ModelRoute) -> dict[str, object]:
    return {"id": route.name, "object": "model", "created": _CREATED, "owned_by": route.owned_by}


def list_body(routes: RouteTable, key: KeyPolicy | None) -> bytes:
    """The models the key may use."""
    visible = routes.visible_to(key.models if key is not None else None)
    return orjson.dumps({"object": "list", "data": [_model_object(r) for r in visible]})


def model_body(routes: RouteTable, key: KeyPolicy | None, name: str) -> bytes:
    """One model the key may use, else 404 (a model the key may not see does not exist for it)."""
    route = routes.find(name)
    if route is None or (key is not None and not key.allows(route.name)):
        raise NotFound(f"The model '{name[:200]}' does not exist.", code="model_not_found", param="model")
    return orjson.dumps({**_model_object(route), "id": name})
