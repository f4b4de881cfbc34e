"""Guards from other installed packages: the entry-point group `gatecore.guardrails`.

An entry point names a factory called with the guard's `options`; what it returns has
`async def check(texts: list[str], side: str) -> Verdict | dict | None` (None: allow). See
tests/plugins/gatecore_header_guard/ for an example package (its `keyword_guard`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from importlib.metadata import entry_points
from typing import Any, Protocol

import msgspec

from gatecore.config.guardrails import GUARDRAIL_GROUP, GuardrailConfig
from gatecore.guardrails.verdict import ACTIONS, Verdict
from gatecore.guardrails.webhook import WebhookFailed

logger = logging.getLogger(__name__)


class GuardPlugin(Protocol):
    def check(self, texts: list[str], side: str) -> Awaitable[Verdict | dict[str, Any] | None]: ...


class PluginGuard:
    """One configured `kind: plugin` guard: the entry point's object, built once per worker."""

    __slots__ = ("fail_open", "name", "plugin", "reroute_to", "sides")

    def __init__(self, config: GuardrailConfig):
        self.name = config.name
        self.sides = frozenset(config.apply_to)
        self.reroute_to = config.reroute_to
        self.fail_open = config.on_error == "allow"
        found = [ep for ep in entry_points(group=GUARDRAIL_GROUP) if ep.name == config.use]
        if not found:
            raise ValueError(f"guardrails: no installed guardrail plugin '{config.use}' ({GUARDRAIL_GROUP})")
        self.plugin: GuardPlugin = found[0].load()(dict(config.options))

    async def check(self, texts: list[str], side: str, model: str, request_id: str) -> Verdict:
        """The plugin's verdict (a dict is read as the webhook's JSON verdict)."""
        try:
            answer = await self.plugin.check(texts, side)
        except Exception:  # a plugin's bug follows on_error, like a webhook that failed
            logger.exception("guardrail plugin '%s' failed", self.name)
            raise WebhookFailed("plugin_error") from None
        if answer is None:
            return Verdict()
        try:
            verdict = answer if isinstance(answer, Verdict) else msgspec.convert(answer, Verdict)
        except msgspec.ValidationError:
            raise WebhookFailed("bad_answer") from None
        if verdict.action not in ACTIONS or (
            verdict.action == "modify" and (verdict.texts is None or len(verdict.texts) != len(texts))
        ):
            raise WebhookFailed("bad_answer")
        return verdict
