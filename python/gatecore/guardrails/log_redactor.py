"""The body log's redactor (telemetry/body_log.py `Redactor`): with PII guardrails configured, every
body logged for an opted-in key goes through the PII scanner first, every built-in type and the
guards' own patterns and deny-lists, each match replaced by its typed placeholder (`[EMAIL]`). A
tokenized request's answer carries the client's values back; this keeps them out of the log too.
Guards defined through the admin API count as configured: the redactor is rebuilt when they change
(guardrails/stored.py)."""

from __future__ import annotations

from gatecore._core import PiiScanner
from gatecore.config.guardrails import GuardrailConfig
from gatecore.config.schema import GatecoreConfig
from gatecore.guardrails.pii import DENY_LIST, Span, apply_spans, deny_pattern


class LogRedactor:
    """Redacts whatever any PII guard could find."""

    __slots__ = ("labels", "scanner")

    def __init__(self, guards: list[GuardrailConfig]):
        custom: list[tuple[str, str]] = []
        for guard in guards:
            if guard.kind != "pii":
                continue
            custom += [(c.name, c.pattern) for c in guard.custom]
            terms = [t for t in guard.deny_list if t.strip()]
            if terms:
                custom.append((DENY_LIST, deny_pattern(terms)))
        self.scanner = PiiScanner(PiiScanner.builtin_kinds(), custom)
        self.labels = [f"[{kind.upper()}]" for kind in self.scanner.kinds]

    def redact(self, text: str) -> str:
        labels = self.labels
        spans: list[Span] = [(s, e, labels[k], None) for k, s, e in self.scanner.scan(text)]
        return apply_spans(text, spans)


def log_redactor(config: GatecoreConfig, stored: list[GuardrailConfig] | None = None) -> LogRedactor | None:
    """The redactor, when any PII guardrail is configured or stored (None otherwise)."""
    guards = [*config.guardrails, *(stored or ())]
    return LogRedactor(guards) if any(g.kind == "pii" for g in guards) else None
