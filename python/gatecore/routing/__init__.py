"""Which deployment serves a request: the compiled model table and the routing stage."""

from gatecore.routing.deployment import Deployment
from gatecore.routing.table import ModelRoute, RouteStage, RouteTable

__all__ = ["Deployment", "ModelRoute", "RouteStage", "RouteTable"]
