"""Reversible per-request tokens: the upstream sees `<EMAIL_1>`, the client's answer gets the value back.

A vault lives as long as one request; the same value gets the same token within it (a conversation
repeats what it quoted), and a token the upstream echoes is restored in whole answers and streams.
"""

from __future__ import annotations

import re

# Tokens a request may hold at most: past it, values are redacted instead (a bounded map).
MAX_TOKENS = 10_000
TOKEN = re.compile(r"<([A-Z][A-Z0-9_]{0,49})_(\d{1,5})>")
# The longest token: the held tail of a stream must be at least this long to restore a split one.
MAX_TOKEN_CHARS = 58


class Vault:
    """One request's token ↔ value map."""

    __slots__ = ("by_token", "by_value", "counters")

    def __init__(self) -> None:
        self.by_value: dict[tuple[str, str], str] = {}
        self.by_token: dict[str, str] = {}
        self.counters: dict[str, int] = {}

    def token(self, label: str, value: str) -> str:
        """The token standing for `value` of type `label` (capitals), e.g. `<EMAIL_1>`."""
        key = (label, value)
        found = self.by_value.get(key)
        if found is not None:
            return found
        if len(self.by_token) >= MAX_TOKENS:
            return f"[{label}]"
        number = self.counters.get(label, 0) + 1
        self.counters[label] = number
        token = f"<{label}_{number}>"
        self.by_value[key] = token
        self.by_token[token] = value
        return token

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, value) of every token of this vault in `text`."""
        if not self.by_token or "<" not in text:
            return []
        found = []
        for match in TOKEN.finditer(text):
            value = self.by_token.get(match.group(0))
            if value is not None:
                found.append((match.start(), match.end(), value))
        return found
