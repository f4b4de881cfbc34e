"""The config used when no file is given: providers found in the environment, and the demo model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ECHO_PROVIDER = {"name": "echo", "kind": "echo"}
ECHO_MODEL = {"name": "echo", "deployments": [{"provider": "echo", "model": "echo"}], "owned_by": "gatecore"}


def config_from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    """A raw config document built from well-known variables.

    `OPENAI_API_KEY` (and `OPENAI_BASE_URL`) adds an `openai` provider reachable as `openai/<model>`;
    `GATECORE_UPSTREAM_URL` adds an OpenAI-compatible local engine (vLLM, SGLang, llama.cpp, …)
    reachable as `local/<model>`; `GATECORE_MASTER_KEY` turns auth on; without it, `GATECORE_UNAUTHENTICATED=loopback` (or `anywhere`) must say that requests are served without keys.
    """
    providers: list[dict[str, Any]] = []
    models: list[dict[str, Any]] = []
    if env.get("OPENAI_API_KEY"):
        base = env.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        providers.append(
            {"name": "openai", "kind": "openai", "base_url": base, "api_key": "${OPENAI_API_KEY}"}
        )
        models.append({"name": "openai/*", "deployments": [{"provider": "openai", "model": "*"}]})
    if env.get("GATECORE_UPSTREAM_URL"):
        providers.append(
            {
                "name": "local",
                "kind": "openai",
                "base_url": "${GATECORE_UPSTREAM_URL}",
                "api_key": "${GATECORE_UPSTREAM_KEY:-}",
            }
        )
        models.append({"name": "local/*", "deployments": [{"provider": "local", "model": "*"}]})
    doc: dict[str, Any] = {"providers": providers, "models": models}
    if env.get("GATECORE_MASTER_KEY"):
        doc["auth"] = {"master_key": "${GATECORE_MASTER_KEY}"}
    elif env.get("GATECORE_UNAUTHENTICATED"):
        doc["auth"] = {"unauthenticated": "${GATECORE_UNAUTHENTICATED}"}
    return doc


def with_demo(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` plus the built-in `echo` provider and model. A demo with no credential source configured
    is served without keys, on a loopback address only (the quick start)."""
    auth = doc.get("auth")
    if auth is None or auth == {}:
        doc = {**doc, "auth": {"unauthenticated": "loopback"}}
    return {
        **doc,
        "providers": [*doc.get("providers", []), ECHO_PROVIDER],
        "models": [*doc.get("models", []), ECHO_MODEL],
    }
