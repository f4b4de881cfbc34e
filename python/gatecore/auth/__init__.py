"""Who may call what: API keys and their policies."""

from gatecore.auth.static_keys import AuthStage, KeyPolicy

__all__ = ["AuthStage", "KeyPolicy"]
