"""Composes the stages into the request chain, in order. No stage imports this package."""

from gatecore.pipeline.gateway import Gateway, build_gateway

__all__ = ["Gateway", "build_gateway"]
