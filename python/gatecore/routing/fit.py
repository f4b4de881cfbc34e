"""What a request needs of a deployment (`Fit`), and the refusals when nothing fits; the route stage
(routing/stage.py) works it out. The capability filter: a request that needs tools, image input, a JSON schema or a long context
goes only to deployments that can take it, else to a `context_fallbacks` model, else it is refused
with a 400 that names what is missing.

Long context is judged on an estimate: the prompt counted with the model's tokenizer (the Rust
counter the limits use) plus max_tokens. Counting costs a parse of the body, so it happens only when
the body is longer (in bytes, plus max_tokens) than the smallest known context window of the model
and its fallbacks (`ModelRoute.roomy`): a token is at least one byte of text, so a shorter body fits
everywhere whatever it holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatecore.errors import InvalidRequest

if TYPE_CHECKING:
    from gatecore.routing.deployment import Deployment


class CapabilityMissing(InvalidRequest):
    """No deployment of the model can do what the request needs (400)."""

    code = "capability_not_supported"


class ContextTooLong(InvalidRequest):
    """The request is longer than every context window it could go to (400, OpenAI's code)."""

    code = "context_length_exceeded"


class Fit:
    """What one request needs of a deployment: capability bits, and the tokens its context window
    must hold (0: not counted, as the request fits every known window)."""

    __slots__ = ("client_model", "needs", "tokens")

    def __init__(self, needs: int, tokens: int, client_model: str):
        self.needs = needs
        self.tokens = tokens
        self.client_model = client_model

    def allows(self, deployment: Deployment) -> bool:
        return deployment.capabilities_for(self.client_model).fits(self.needs, self.tokens)
