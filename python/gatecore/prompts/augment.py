"""The augmentation stage: per team, key or model, text put before and after the system prompt of
chat requests, from templates over the caller (team, user, key, its metadata), the model and
context taken from request headers (`prompts.augment` in the config).

It runs after decode and before routing, so what it adds is counted, routed, limited, guarded and
cached like the client's own text, and it is what the upstream receives. A request that no rule
matches costs a few attribute tests per rule; only a matching one is decoded and encoded again.
Values go in as text inside the system message's content (the body is re-encoded as JSON), so a
header cannot add a message.
"""

from __future__ import annotations

from typing import Any

import orjson

from gatecore.config.prompts import AugmentRule, PromptsConfig
from gatecore.errors import InvalidRequest
from gatecore.prompts.template import Template
from gatecore.request import CHAT, RequestContext

MAX_HEADER_CHARS = 1000
_VARIABLES = ("team", "user", "key", "model", "metadata", "headers")


class _Rule:
    __slots__ = ("headers", "key", "model", "prefix", "suffix", "team")

    def __init__(self, rule: AugmentRule, index: int):
        self.team, self.key, self.model = rule.team, rule.key, rule.model
        self.prefix = Template(rule.system_prefix, f"prompts.augment[{index}].system_prefix")
        self.suffix = Template(rule.system_suffix, f"prompts.augment[{index}].system_suffix")
        self.headers = tuple(rule.context_headers.items())
        for template in (self.prefix, self.suffix):
            for path in template.paths:
                if path[0] not in _VARIABLES:
                    raise ValueError(
                        f"prompts.augment[{index}]: '{{{{ {'.'.join(path)} }}}}' names none of "
                        f"{', '.join(_VARIABLES)}"
                    )

    def matches(self, ctx: RequestContext) -> bool:
        key = ctx.key
        if self.model is not None and ctx.client_model != self.model:
            return False
        if self.team is not None:
            team = key.team if key is not None else None
            if team is None or self.team not in (team.id, team.name):
                return False
        return self.key is None or (key is not None and self.key in (key.id, key.name))


def augment_errors(config: PromptsConfig) -> list[str]:
    """Each rule's template error as `path: reason` (`gatecore check` and `serve` report them)."""
    errors = []
    for i, rule in enumerate(config.augment):
        try:
            _Rule(rule, i)
        except ValueError as exc:
            errors.append(str(exc))
        except InvalidRequest as exc:
            errors.append(exc.message)
    return errors


def augment_stage(config: PromptsConfig) -> Augment | None:
    """The stage, or None when no rule is configured (then it is not in the chain)."""
    if not config.augment:
        return None
    return Augment(tuple(_Rule(rule, i) for i, rule in enumerate(config.augment)))


class Augment:
    """Adds the matching rules' prefix and suffix around a chat request's system prompt."""

    __slots__ = ("rules",)

    def __init__(self, rules: tuple[_Rule, ...]):
        self.rules = rules

    def __call__(self, ctx: RequestContext) -> None:
        if ctx.endpoint.hub is not CHAT:  # chat, and Anthropic Messages translated to it
            return
        matching = [rule for rule in self.rules if rule.matches(ctx)]
        if not matching:
            return
        try:
            body = orjson.loads(ctx.body)
            messages = body["messages"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return  # the upstream answers a body that is not a chat request for itself
        if not isinstance(messages, list):
            return
        values = self._values(ctx, matching)
        prefix = "".join(rule.prefix.render(values) for rule in matching)
        suffix = "".join(rule.suffix.render(values) for rule in matching)
        if not prefix and not suffix:
            return
        first = messages[0] if messages and isinstance(messages[0], dict) else None
        if first is not None and first.get("role") in ("system", "developer"):
            content = first.get("content")
            if isinstance(content, str):
                first["content"] = _joined(prefix, content, suffix)
            elif isinstance(content, list):
                first["content"] = [
                    *([{"type": "text", "text": prefix}] if prefix else []),
                    *content,
                    *([{"type": "text", "text": suffix}] if suffix else []),
                ]
            else:
                raise InvalidRequest(
                    "The system message's content must be text or parts.", param="messages[0]"
                )
        else:
            messages.insert(0, {"role": "system", "content": _joined(prefix, "", suffix)})
        ctx.body = orjson.dumps(body)

    def _values(self, ctx: RequestContext, rules: list[_Rule]) -> dict[str, Any]:
        key = ctx.key
        headers: dict[str, str] = {}
        source = ctx.headers
        for rule in rules:
            for header, name in rule.headers:
                value = source.get(header) if source is not None else None
                headers[name] = str(value)[:MAX_HEADER_CHARS] if value else ""
        return {
            "team": key.team.name if key is not None and key.team is not None else "",
            "user": key.user.name if key is not None and key.user is not None else "",
            "key": key.name if key is not None else "",
            "model": ctx.client_model,
            "metadata": key.metadata if key is not None else {},
            "headers": headers,
        }


def _joined(prefix: str, content: str, suffix: str) -> str:
    return "\n\n".join(part for part in (prefix, content, suffix) if part)
