"""The model table compiled from config, and the stage that picks a deployment for a request."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from gatecore.errors import ModelNotAllowed, NotFound
from gatecore.request import RequestContext

if TYPE_CHECKING:
    from gatecore.providers.base import Provider
    from gatecore.upstream.timeouts import Timeouts


class Deployment:
    """One place a model is served: a provider, the model name there, its weight and timeouts."""

    __slots__ = ("id", "model", "provider", "timeouts", "weight")

    def __init__(self, provider: Provider, model: str, weight: float, timeouts: Timeouts):
        self.provider = provider
        self.model = model  # `*`: the rest of the requested name after a wildcard model's prefix
        self.weight = weight
        self.timeouts = timeouts
        self.id = f"{provider.name}/{model}"


class ModelRoute:
    """A client-facing model name and its deployments."""

    __slots__ = ("_cumulative", "_total", "deployments", "name", "owned_by", "prefix")

    def __init__(self, name: str, deployments: list[Deployment], owned_by: str):
        self.name = name
        self.deployments = deployments
        self.owned_by = owned_by
        self.prefix = name[:-1] if name.endswith("*") else None
        total = 0.0
        self._cumulative: list[float] = []
        for deployment in deployments:
            total += deployment.weight
            self._cumulative.append(total)
        self._total = total

    def pick(self) -> Deployment:
        """A deployment chosen at random in proportion to the weights."""
        if len(self.deployments) == 1:
            return self.deployments[0]
        point = random.random() * self._total
        for deployment, edge in zip(self.deployments, self._cumulative, strict=True):
            if point < edge:
                return deployment
        return self.deployments[-1]


class RouteTable:
    """Client model name → route: exact names first, then wildcard prefixes, longest first."""

    __slots__ = ("exact", "wildcards")

    def __init__(self, routes: list[ModelRoute]):
        self.exact = {r.name: r for r in routes if r.prefix is None}
        self.wildcards = sorted((r for r in routes if r.prefix is not None), key=lambda r: -len(r.name))

    def find(self, model: str) -> ModelRoute | None:
        route = self.exact.get(model)
        if route is not None:
            return route
        for wildcard in self.wildcards:
            assert wildcard.prefix is not None
            if model.startswith(wildcard.prefix) and len(model) > len(wildcard.prefix):
                return wildcard
        return None

    def names(self) -> list[str]:
        """Every client-facing model name, wildcards included (`openai/*`)."""
        return [*self.exact, *(r.name for r in self.wildcards)]

    def visible_to(self, allowed: frozenset[str] | None) -> list[ModelRoute]:
        """Routes a key may use, in config order."""
        routes = [*self.exact.values(), *self.wildcards]
        return routes if allowed is None else [r for r in routes if r.name in allowed]


class RouteStage:
    """Resolves the requested model (404 unknown, 403 not allowed for the key) and picks a deployment."""

    __slots__ = ("table",)

    def __init__(self, table: RouteTable):
        self.table = table

    async def __call__(self, ctx: RequestContext) -> None:
        route = self.table.find(ctx.client_model)
        if route is None:
            raise NotFound(
                f"The model '{ctx.client_model}' does not exist.", code="model_not_found", param="model"
            )
        if ctx.key is not None and not ctx.key.allows(route.name):
            raise ModelNotAllowed(f"This key may not use the model '{ctx.client_model}'.", param="model")
        ctx.route = route
        deployment = ctx.deployment = route.pick()
        if deployment.model == "*":
            assert route.prefix is not None
            ctx.upstream_model = ctx.client_model[len(route.prefix) :]
            ctx.deployment_id = f"{deployment.provider.name}/{ctx.upstream_model}"
        else:
            ctx.upstream_model = deployment.model
            ctx.deployment_id = deployment.id
