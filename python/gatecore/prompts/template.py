"""The template language: `{{ name }}` and `{{ a.b.c }}` in message contents, nothing else.

A Jinja-compatible subset with no evaluation at all: a placeholder names a value by a dotted path and
is replaced by that value as text. No expressions, filters, attribute calls or loops exist, so no
template can run code, loop, or reach anything but the variables it is given, and a value is only
ever text inside one message's content (the body is encoded as JSON from these strings, so a value
cannot add or end a message). A template is parsed once, at publish time: an unclosed `{{`, an empty
or malformed placeholder, a `{%` block or a name that is not declared is a 400 then, never at call time.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from gatecore.errors import InvalidRequest

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z0-9_]{1,64}){0,7}$")
MAX_TEMPLATE_CHARS = 100_000


class Template:
    """A parsed template: literal text and placeholders (dotted paths), alternating."""

    __slots__ = ("parts", "paths")

    def __init__(self, text: str, where: str):
        if len(text) > MAX_TEMPLATE_CHARS:
            raise InvalidRequest(f"{where} is longer than {MAX_TEMPLATE_CHARS} characters.", param=where)
        parts: list[str | tuple[str, ...]] = []
        at = 0
        for found in _PLACEHOLDER.finditer(text):
            parts.append(text[at : found.start()])
            path = found.group(1).strip()
            if not _PATH.match(path):
                raise InvalidRequest(
                    f"{where}: '{{{{{found.group(1)[:60]}}}}}' is not a variable; only "
                    "'{{ name }}' or '{{ name.field }}' placeholders are allowed.",
                    code="invalid_template",
                    param=where,
                )
            parts.append(tuple(path.split(".")))
            at = found.end()
        rest = text[at:]
        if "{{" in rest or "{%" in text or "{#" in text:
            raise InvalidRequest(
                f"{where}: an unclosed '{{{{' or a '{{%' / '{{#' block; only '{{{{ name }}}}' placeholders "
                "are allowed.",
                code="invalid_template",
                param=where,
            )
        parts.append(rest)
        self.parts = tuple(parts)
        self.paths = tuple(p for p in parts if isinstance(p, tuple))

    def render(self, values: dict[str, Any]) -> str:
        """The text with each placeholder replaced by its value as text (a path that does not resolve
        is an empty string: publish-time checks make that a declared variable left out)."""
        parts = self.parts
        if len(parts) == 1:
            text: str = parts[0]  # type: ignore[assignment]  # no placeholder: the text itself
            return text
        out: list[str] = []
        for part in parts:
            if part.__class__ is str:
                out.append(part)
            else:
                value = values.get(part[0]) if len(part) == 1 else lookup(values, part)  # type: ignore[arg-type]
                out.append(value if value.__class__ is str else as_text(value))
        return "".join(out)


def lookup(values: Any, path: tuple[str, ...]) -> Any:
    """The value at a dotted path; a string that holds JSON is looked into (a step's JSON output)."""
    value = values
    for name in path:
        if isinstance(value, str):
            value = parsed_json(value)
        if isinstance(value, dict):
            value = value.get(name)
        elif isinstance(value, list) and name.isdigit() and int(name) < len(value):
            value = value[int(name)]
        else:
            return None
    return value


def parsed_json(text: str) -> Any:
    """A text's JSON value, or None: the whole text, a ``` fence's, or the object or array from its
    first `{` or `[` to its last `}` or `]` (models often wrap their JSON in prose)."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").removeprefix("json").strip()
    for candidate in (body, _embedded(body, "{", "}"), _embedded(body, "[", "]")):
        if candidate:
            try:
                return orjson.loads(candidate)
            except orjson.JSONDecodeError:
                continue
    return None


def _embedded(text: str, opening: str, closing: str) -> str:
    start, end = text.find(opening), text.rfind(closing)
    return text[start : end + 1] if 0 <= start < end else ""


def as_text(value: Any) -> str:
    """A variable's value as it goes into a message: strings as they are, null as nothing, numbers and
    booleans in JSON spelling, arrays and objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()
