"""`${VAR}` and `${VAR:-default}` substitution in config strings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Bounded: names are identifiers and defaults cannot nest, so this is linear in the input.
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(value: Any, env: Mapping[str, str], path: str, errors: list[str]) -> Any:
    """Return `value` with every `${VAR}` in its strings replaced from `env`.

    A reference to an unset variable without a default is recorded in `errors` with its path.
    """
    if isinstance(value, str):
        return _substitute(value, env, path, errors)
    if isinstance(value, list):
        return [interpolate(item, env, f"{path}[{i}]", errors) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {
            key: interpolate(item, env, f"{path}.{key}" if path else str(key), errors)
            for key, item in value.items()
        }
    return value


def _substitute(text: str, env: Mapping[str, str], path: str, errors: list[str]) -> str:
    if "${" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = env.get(name)
        if found is not None and (found != "" or default is None):
            return found
        if default is not None:
            return default
        errors.append(f"{path}: environment variable '{name}' is not set")
        return ""

    return _REFERENCE.sub(replace, text)
