"""`prompts:`: system-prompt augmentation rules (prompts/augment.py)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

HeaderName = Annotated[str, Meta(pattern=r"^[a-z0-9-]{1,100}$")]
VariableName = Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class AugmentRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One rule: which requests (every given matcher must match: a team by name or id, a key by
    name or id, a model by the name the client sent; none given: every chat request) and what goes
    around their system prompt. `system_prefix` and `system_suffix` are templates over `{{ team }}`,
    `{{ user }}`, `{{ key }}`, `{{ model }}`, `{{ metadata.<field> }}` (the key's metadata) and
    `{{ headers.<variable> }}` (`context_headers` maps a request header to such a variable)."""

    team: str | None = None
    key: str | None = None
    model: str | None = None
    system_prefix: Annotated[str, Meta(max_length=20_000)] = ""
    system_suffix: Annotated[str, Meta(max_length=20_000)] = ""
    context_headers: dict[HeaderName, VariableName] = msgspec.field(default_factory=dict)


class PromptsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    augment: Annotated[list[AugmentRule], Meta(max_length=1000)] = msgspec.field(default_factory=list)
