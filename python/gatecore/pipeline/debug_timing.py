"""`x-gatecore-debug: timing`: the stage marks rendered as `x-gatecore-timing` for a client that asks
and whose key may see them (request/stage_timing.py)."""

from __future__ import annotations

from gatecore.request import RequestContext
from gatecore.request.stage_timing import StageTiming, allowed


class DebugTiming:
    """Puts a `StageTiming` on the context of a request that asked for it (the relay sends it)."""

    __slots__ = ("names",)

    def __init__(self, names: list[str]):
        self.names = names  # the chain's timed stages, filled once the chain is built

    def __call__(self, ctx: RequestContext) -> None:
        debug = ctx.headers.get("x-gatecore-debug")
        if debug is not None and allowed(debug, ctx.key):
            ctx.timing = StageTiming(tuple(self.names), ctx.started, ctx.stage_ends)
