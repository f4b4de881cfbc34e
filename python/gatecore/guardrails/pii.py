"""The PII guard: entity types found by the Rust scanner (`_core.PiiScanner`), an action per type.

Actions: `redact` (a typed placeholder, `[EMAIL]`), `mask` (all but the last 4 characters as `*`),
`block` (a 400 naming the guard and the type, never the value), `tokenize` (a per-request token, the
value restored in the answer: guardrails/vault.py) and `log` (counted only).
"""

from __future__ import annotations

from gatecore._core import PiiScanner
from gatecore.config.guardrails import GuardrailConfig
from gatecore.errors import GuardrailBlocked
from gatecore.guardrails.tally import Tally
from gatecore.guardrails.vault import Vault

MASK_KEEP = 4
DENY_LIST = "deny_list"
# A text's matches: (start, end, replacement or None to keep the text, what to count: (guard, type,
# action) or None). Counted by the caller once it knows which spans take effect (a stream's window
# sees a held entity more than once).
Span = tuple[int, int, str | None, tuple[str, str, str] | None]


def _escape(term: str) -> str:
    """`term` as a literal in the `regex` crate's syntax."""
    return "".join("\\" + c if c in "\\.+*?()|[]{}^$#&-~" else c for c in term)


def deny_pattern(terms: list[str]) -> str:
    """One pattern matching any of `terms` as whole words, case-insensitively."""
    return r"(?i)(?-u:\b)(?:" + "|".join(_escape(t) for t in terms) + r")(?-u:\b)"


class PiiGuard:
    """One configured `kind: pii` guard, compiled once per worker and shared by every request."""

    __slots__ = ("actions", "labels", "name", "overlap", "scanner", "sides", "window")

    def __init__(self, config: GuardrailConfig):
        self.name = config.name
        self.sides = frozenset(config.apply_to)
        custom = [(c.name, c.pattern) for c in config.custom]
        terms = [t for t in config.deny_list if t.strip()]
        if terms:
            custom.append((DENY_LIST, deny_pattern(terms)))
        self.scanner = PiiScanner(list(config.entities), custom)
        by_name = dict(config.entities)
        by_name.update((c.name, c.action) for c in config.custom)
        by_name[DENY_LIST] = config.deny_action
        kinds = self.scanner.kinds
        self.actions = tuple(by_name[k] for k in kinds)
        self.labels = tuple(k.upper() for k in kinds)
        self.window = config.window_chars
        self.overlap = config.overlap_chars

    def spans(self, text: str, vault: Vault | None, tally: Tally, output: bool) -> list[Span]:
        """The rewrites `text` needs (each with what it counts as); raises GuardrailBlocked on a
        `block` type (counted). On the answer (`output`), a `tokenize` type the model wrote itself is
        only counted: tokens are the input's."""
        found = self.scanner.scan(text)
        if not found:
            return []
        spans: list[Span] = []
        kinds = self.scanner.kinds
        for kind, start, end in found:
            action = self.actions[kind]
            key = (self.name, kinds[kind], action)
            if action == "block":
                tally.add(*key)
                where = "answer" if output else "request"
                raise GuardrailBlocked(
                    f"Guardrail '{self.name}' blocked this {where}: it contains {kinds[kind]}."
                )
            if action == "log" or (output and action == "tokenize"):
                spans.append((start, end, None, key))
                continue
            value = text[start:end]
            label = self.labels[kind]
            if action == "mask":
                hidden = len(value) - MASK_KEEP if len(value) > MASK_KEEP else len(value)
                spans.append((start, end, "*" * hidden + value[hidden:], key))
            elif action == "tokenize" and vault is not None:
                spans.append((start, end, vault.token(label, value), key))
            else:
                spans.append((start, end, f"[{label}]", key))
        return spans


def count_spans(tally: Tally, spans: list[Span]) -> None:
    """Count the spans that take effect."""
    for span in spans:
        if span[3] is not None:
            tally.add(*span[3])


def apply_spans(text: str, spans: list[Span]) -> str:
    """`text` with each span's replacement; spans ordered and disjoint."""
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for start, end, replacement, _ in spans:
        if replacement is None:
            continue
        out.append(text[pos:start])
        out.append(replacement)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def merge_spans(groups: list[list[Span]]) -> list[Span]:
    """One ordered, disjoint list from several guards' spans (earliest first, then longest)."""
    if len(groups) == 1:
        return groups[0]
    merged = sorted((s for g in groups for s in g), key=lambda s: (s[0], -s[1]))
    kept: list[Span] = []
    for span in merged:
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    return kept
