"""`GET /v1/models` and `GET /v1/models/{id}` in OpenAI's list and model shapes.

Each model object carries, beside OpenAI's `id`, `object`, `created` and `owned_by`, the model's
`context_window` (tokens; null when unknown) and `capabilities` (`tools`, `vision`, `json`): from the
model's config entry, else from the shipped table (providers/model_table.py) for the upstream model
of its first deployment, else null / false. A wildcard model (`openai/*`) has no one upstream model,
so its list entry knows only what is configured; asked for by a full name (`/v1/models/openai/gpt-4o`)
it is looked up as the deployment's model that name stands for (`gpt-4o`).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gatecore.config.schema import CapabilitiesConfig, ModelConfig
from gatecore.errors import NotFound
from gatecore.policy.key_policy import KeyPolicy
from gatecore.providers.model_table import model_facts
from gatecore.routing.table import ModelRoute, RouteTable

_CREATED = int(time.time())
_NO_CAPABILITIES = CapabilitiesConfig()


def model_card(config: ModelConfig | None, upstream_model: str | None) -> dict[str, Any]:
    """`context_window` and `capabilities` of a model: configured values first, then the table's."""
    facts = model_facts(upstream_model) if upstream_model and upstream_model != "*" else None
    caps = (config.capabilities if config is not None else None) or _NO_CAPABILITIES
    window = config.context_window if config is not None else None
    return {
        "context_window": window if window is not None else (facts.context_window if facts else None),
        "capabilities": {
            "tools": caps.tools if caps.tools is not None else bool(facts and facts.tools),
            "vision": caps.vision if caps.vision is not None else bool(facts and facts.vision),
            "json": caps.json if caps.json is not None else bool(facts and facts.json),
        },
    }


class ModelCatalog:
    """The model objects of one config, built once per worker."""

    __slots__ = ("configs", "listed", "routes")

    def __init__(self, routes: RouteTable, models: list[ModelConfig]):
        self.routes = routes
        self.configs = {m.name: m for m in models}
        self.listed: dict[str, dict[str, Any]] = {}
        for name in routes.names():
            route = routes.find(name)  # a wildcard's own name (`openai/*`) finds the wildcard
            assert route is not None
            self.listed[name] = self._object(route, name)

    def _object(self, route: ModelRoute, name: str) -> dict[str, Any]:
        upstream = route.deployments[0].model if route.deployments else None
        if upstream == "*" and route.prefix is not None and name != route.name:
            upstream = name[len(route.prefix) :]  # the part a wildcard deployment forwards
        card = model_card(self.configs.get(route.name), upstream)
        return {"id": name, "object": "model", "created": _CREATED, "owned_by": route.owned_by, **card}

    def list_body(self, key: KeyPolicy | None) -> bytes:
        """The models the key may use."""
        visible = self.routes.visible_to(key.models if key is not None else None)
        return orjson.dumps({"object": "list", "data": [self.listed[r.name] for r in visible]})

    def model_body(self, key: KeyPolicy | None, name: str) -> bytes:
        """One model the key may use, else 404 (a model the key may not see does not exist for it)."""
        route = self.routes.find(name)
        if route is None or (key is not None and not key.allows(route.name)):
            raise NotFound(f"The model '{name[:200]}' does not exist.", code="model_not_found", param="model")
        found = self.listed.get(name)
        return orjson.dumps(found if found is not None else self._object(route, name))
