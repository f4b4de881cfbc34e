"""Who may call a published prompt."""

from __future__ import annotations

from gatecore.policy.key_policy import KeyPolicy
from gatecore.prompts.repository import PromptHead
from gatecore.prompts.spec import Compiled

ADMIN_ROLE = "admin"


def may_call(key: KeyPolicy | None, head: PromptHead, compiled: Compiled) -> bool:
    """A team's prompt is for that team's keys (and the master key and admin keys); a prompt that
    lists `keys` only for those keys (by id or name)."""
    if key is None or key.source == "master" or key.role == ADMIN_ROLE:
        return True
    if head.team_id is not None and (key.team is None or key.team.id != head.team_id):
        return False
    keys = compiled.spec.keys
    return keys is None or key.id in keys or key.name in keys
