"""Which published prompt a request runs (ground floor: the ledger, the answer's head and the metrics
read it; prompts/ fills it)."""

from __future__ import annotations


class PromptRef:
    """The prompt named by `POST /v1/prompts/{name}` and how the client chose its version (`label`,
    or `version`), then the version it ran; `parent` is the pipeline request's id for a chain step's
    own row."""

    __slots__ = ("guardrails", "label", "name", "parent", "version")

    def __init__(self, name: str, label: str | None = None, version: int = 0, parent: str | None = None):
        self.name = name
        self.label = label
        self.version = version  # 0 until resolved (or when asked for by `?version=N`)
        self.parent = parent
        # The guardrails the version it ran names (its `guardrail`), which the guard stage adds to the
        # model's and the key's.
        self.guardrails: tuple[str, ...] = ()
