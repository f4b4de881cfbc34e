"""Asking one external guard (webhook, moderation endpoint, classifier, plugin) about some texts,
on either side, with its failure mode applied and the outcome counted (never the texts)."""

from __future__ import annotations

from gatecore.guardrails.moderation import ClassifierGuard, ModerationGuard
from gatecore.guardrails.plugins import PluginGuard
from gatecore.guardrails.tally import Tally
from gatecore.guardrails.verdict import Verdict
from gatecore.guardrails.webhook import WebhookFailed, WebhookGuard

ExternalGuard = WebhookGuard | PluginGuard | ModerationGuard | ClassifierGuard


async def ask(
    guard: ExternalGuard, texts: list[str], side: str, model: str, request_id: str, tally: Tally
) -> Verdict | None:
    """The guard's verdict (counted), or None when it gave none: then `on_error: allow` lets the
    texts through (the verdict allows) and `block` refuses them (None)."""
    try:
        verdict = await guard.check(texts, side, model, request_id)
    except WebhookFailed as exc:
        tally.add(guard.name, str(exc), "allow" if guard.fail_open else "block")
        return Verdict() if guard.fail_open else None
    if isinstance(guard, ModerationGuard | ClassifierGuard):  # the verdict's text is the category
        tally.add(guard.name, verdict.texts[0] if verdict.texts else "moderation", verdict.action)
    else:
        tally.add(guard.name, "verdict", verdict.action)
    return verdict
