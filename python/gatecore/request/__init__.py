"""The request context on the ground floor: what every stage of the chain reads and fills, and the
records the stages share (token counts, chunk gaps, stage timing).

Nothing here imports a stage (auth, limits, routing, ledger, relay, …), a layer above them
(pipeline, server) or what stages stand on (providers, telemetry, upstream, …): import-linter checks
it (`make lint`).
"""

from gatecore.request.context import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    MESSAGES,
    AnthropicNative,
    BodyCapture,
    Endpoint,
    RequestContext,
    ResponseEncoder,
    Usage,
)

__all__ = [
    "CHAT",
    "COMPLETIONS",
    "EMBEDDINGS",
    "MESSAGES",
    "AnthropicNative",
    "BodyCapture",
    "Endpoint",
    "RequestContext",
    "ResponseEncoder",
    "Usage",
]
