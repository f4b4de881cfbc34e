"""Which deployment serves a request: the compiled model table and the route stage."""

from gatecore.routing.deployment import Deployment
from gatecore.routing.stage import RouteStage
from gatecore.routing.table import ModelRoute, RouteTable

__all__ = ["Deployment", "ModelRoute", "RouteStage", "RouteTable"]
