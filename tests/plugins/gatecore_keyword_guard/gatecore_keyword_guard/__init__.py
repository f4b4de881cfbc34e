"""An example gatecore guardrail plugin: blocks a request whose texts name a keyword, and replaces
another word (a `modify` verdict). Named by config:

    guardrails:
      - {name: words, kind: plugin, use: keyword_guard, options: {block: [project-x], replace: {foo: bar}}}
"""

from __future__ import annotations

from typing import Any


class KeywordGuard:
    """`async def check(texts, side)` → a verdict: None (allow) or a dict in the webhook's shape."""

    def __init__(self, block: list[str], replace: dict[str, str]):
        self.block = [word.lower() for word in block]
        self.replace = replace

    async def check(self, texts: list[str], side: str) -> dict[str, Any] | None:
        if any("explode" in text for text in texts):
            raise RuntimeError("a plugin's own bug: gatecore follows the guard's on_error")
        if any(word in text.lower() for text in texts for word in self.block):
            return {"action": "block"}
        changed = []
        for text in texts:
            for old, new in self.replace.items():
                text = text.replace(old, new)
            changed.append(text)
        return {"action": "modify", "texts": changed} if changed != texts else None


def build(options: dict[str, Any]) -> KeywordGuard:
    """The entry point: the guard's `options` from the config."""
    return KeywordGuard(list(options.get("block", [])), dict(options.get("replace", {})))
