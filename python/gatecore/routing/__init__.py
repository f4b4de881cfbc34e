"""Which deployment serves a request: the compiled model table and the routing stage."""

from gatecore.routing.table import Deployment, ModelRoute, RouteStage, RouteTable

__all__ = ["Deployment", "ModelRoute", "RouteStage", "RouteTable"]
