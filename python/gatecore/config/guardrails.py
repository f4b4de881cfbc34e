"""`guardrails:`: named guards (PII, prompt injection, webhooks, plugins) that models attach by name.

The compiled guards live in gatecore/guardrails/; this module only declares and checks the config.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import msgspec

from gatecore._core import PiiScanner

GUARD_KINDS = ("pii", "prompt_injection", "webhook", "moderation", "classifier", "plugin")
PII_ACTIONS = ("redact", "mask", "block", "tokenize", "log")
INJECTION_ACTIONS = ("block", "flag", "reroute")
# The entry-point group a package declares guardrails in (`[project.entry-points."gatecore.guardrails"]`).
GUARDRAIL_GROUP = "gatecore.guardrails"
# Bounds of what one guard may hold: operators write these, but a typo should not cost a worker.
MAX_CUSTOM_PATTERNS = 64
MAX_DENY_TERMS = 10_000
MAX_WINDOW_CHARS = 64 * 1024


class CustomPattern(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An entity type of one's own: its name (its placeholder is the name in capitals), a regex in the
    `regex` crate's syntax and the action taken on it."""

    name: str
    pattern: str
    action: str = "redact"


class GuardrailConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One named guard. Which fields apply depends on `kind` (README, "Guardrails")."""

    name: str
    kind: str
    # A default guard applies to every model that lists no `guardrails` of its own.
    default: bool = False
    # Where it looks: the request's texts (`input`) and/or the answer's (`output`, streams included).
    apply_to: list[str] = msgspec.field(default_factory=lambda: ["input", "output"])
    # pii: the action per built-in entity type; `custom` types and a `deny_list` (words, matched
    # case-insensitively as whole words, action `deny_action`).
    entities: dict[str, str] = msgspec.field(default_factory=dict)
    custom: list[CustomPattern] = msgspec.field(default_factory=list)
    deny_list: list[str] = msgspec.field(default_factory=list)
    deny_action: str = "block"
    # pii on streams: characters held back before release (0: streamed output is not checked) and
    # the tail kept back from each release, so an entity split across chunks is still seen whole.
    window_chars: int = 32
    overlap_chars: int = 64
    # prompt_injection: the action at or above the score threshold (`reroute`: flag, and serve the
    # request with the model `reroute_to` instead; webhooks' and plugins' `flag` verdicts reroute too
    # when it is set).
    action: str = "block"
    threshold: float = 0.8
    reroute_to: str | None = None
    # webhook and moderation: where the texts are POSTed, how long a verdict may take, and what a
    # failed call means (plugin: what a plugin that raises means).
    url: str | None = None
    timeout_s: float = 2.0
    on_error: str = "allow"
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    # moderation and classifier: the endpoint's model and key, and the categories that block (none:
    # any flagged; a classifier's are Llama Guard's codes, S1-S14).
    model: str | None = None
    api_key: str | None = None
    categories: list[str] = msgspec.field(default_factory=list)
    # plugin: the entry point's name in `gatecore.guardrails`, and its factory's settings.
    use: str | None = None
    options: dict[str, Any] = msgspec.field(default_factory=dict)


def validate_guardrails(guards: list[GuardrailConfig], model_guards: dict[str, list[str]]) -> list[str]:
    """Every error in `guardrails:` and in the models' `guardrails` lists, as `path: reason`."""
    errors: list[str] = []
    names: set[str] = set()
    builtin = set(PiiScanner.builtin_kinds())
    for i, guard in enumerate(guards):
        path = f"guardrails[{i}]"
        if not guard.name or len(guard.name) > 100:
            errors.append(f"{path}.name: must be 1-100 characters")
        if guard.name in names:
            errors.append(f"{path}.name: duplicate guardrail '{guard.name[:100]}'")
        names.add(guard.name)
        if guard.kind not in GUARD_KINDS:
            errors.append(f"{path}.kind: unknown kind '{guard.kind[:50]}' ({', '.join(GUARD_KINDS)})")
        errors.extend(
            f"{path}.apply_to: '{side[:50]}' is neither input nor output"
            for side in guard.apply_to
            if side not in ("input", "output")
        )
        if guard.reroute_to is not None and guard.reroute_to not in model_guards:
            errors.append(f"{path}.reroute_to: unknown model '{guard.reroute_to[:100]}'")
        if guard.kind == "pii":
            errors.extend(_pii(guard, path, builtin))
        elif guard.kind == "prompt_injection":
            if guard.action not in INJECTION_ACTIONS:
                errors.append(f"{path}.action: must be one of {', '.join(INJECTION_ACTIONS)}")
            if not 0 < guard.threshold <= 1:
                errors.append(f"{path}.threshold: must be greater than 0 and at most 1")
            if guard.action == "reroute" and not guard.reroute_to:
                errors.append(f"{path}.reroute_to: action reroute names the model to serve with")
        elif guard.kind in ("webhook", "moderation", "classifier"):
            if not guard.url or not guard.url.startswith(("http://", "https://")):
                errors.append(f"{path}.url: an http:// or https:// URL is required")
            if not 0 < guard.timeout_s <= 60:
                errors.append(f"{path}.timeout_s: must be greater than 0 and at most 60")
            if guard.on_error not in ("allow", "block"):
                errors.append(f"{path}.on_error: must be allow or block")
            errors.extend(
                f"{path}.headers: '{name[:50]}' has a line break or an empty name"
                for name, value in guard.headers.items()
                if not name.strip() or any(c in name + value for c in "\r\n")
            )
        if guard.kind == "classifier" and not guard.model:
            errors.append(f"{path}.model: a classifier guard names the model it asks")
        elif guard.kind == "plugin":
            installed = {ep.name for ep in entry_points(group=GUARDRAIL_GROUP)}
            if guard.use not in installed:
                found = ", ".join(sorted(installed)) or "none"
                errors.append(
                    f"{path}.use: no installed guardrail plugin '{(guard.use or '')[:100]}' (installed: {found})"
                )
    for model, attached in model_guards.items():
        errors.extend(
            f"models.{model}.guardrails: unknown guardrail '{name[:100]}'"
            for name in attached
            if name not in names
        )
    return errors


def _pii(guard: GuardrailConfig, path: str, builtin: set[str]) -> list[str]:
    errors: list[str] = []
    for entity, action in guard.entities.items():
        if entity not in builtin:
            errors.append(
                f"{path}.entities.{entity[:50]}: unknown entity type ({', '.join(sorted(builtin))})"
            )
        if action not in PII_ACTIONS:
            errors.append(f"{path}.entities.{entity[:50]}: unknown action '{action[:50]}'")
    if len(guard.custom) > MAX_CUSTOM_PATTERNS:
        errors.append(f"{path}.custom: at most {MAX_CUSTOM_PATTERNS} patterns")
    for j, custom in enumerate(guard.custom):
        if not custom.name.isidentifier() or len(custom.name) > 50:
            errors.append(f"{path}.custom[{j}].name: letters, digits and _ (at most 50)")
        if custom.action not in PII_ACTIONS:
            errors.append(f"{path}.custom[{j}].action: unknown action '{custom.action[:50]}'")
    if len(guard.deny_list) > MAX_DENY_TERMS:
        errors.append(f"{path}.deny_list: at most {MAX_DENY_TERMS} terms")
    if guard.deny_action not in PII_ACTIONS:
        errors.append(f"{path}.deny_action: unknown action '{guard.deny_action[:50]}'")
    if not 0 <= guard.window_chars <= MAX_WINDOW_CHARS:
        errors.append(f"{path}.window_chars: must be between 0 (off) and {MAX_WINDOW_CHARS}")
    if not 16 <= guard.overlap_chars <= 4096:
        errors.append(f"{path}.overlap_chars: must be between 16 and 4096")
    if not errors:
        try:
            PiiScanner(list(guard.entities), [(c.name, c.pattern) for c in guard.custom])
        except ValueError as exc:
            errors.append(f"{path}.custom: {str(exc)[:300]}")
    return errors
