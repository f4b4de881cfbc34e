"""Load a config file: parse YAML/JSON, interpolate ${ENV}, decode into Structs, validate.

Every problem is collected with its path in the file (`models[2].deployments[0].provider: …`) so that
`gatecore check` can print them all at once instead of stopping at the first.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from gatecore.config.cache import CacheConfig
from gatecore.config.guardrails import GuardrailConfig
from gatecore.config.interpolate import interpolate
from gatecore.config.limits import BudgetsConfig, LimitsConfig, RedisConfig
from gatecore.config.pipeline import PipelineConfig
from gatecore.config.prompts import PromptsConfig
from gatecore.config.responses import ResponsesConfig
from gatecore.config.routing import RoutingDefaults
from gatecore.config.schema import (
    AuthConfig,
    DeploymentConfig,
    GatecoreConfig,
    LedgerConfig,
    ModelConfig,
    ProviderConfig,
    ServerConfig,
    StaticKeyConfig,
    StoreConfig,
)
from gatecore.config.telemetry import TelemetryConfig
from gatecore.config.validate import validate_config

T = TypeVar("T")

_SECTIONS = {
    "server",
    "guardrails",
    "providers",
    "models",
    "auth",
    "store",
    "limits",
    "budgets",
    "redis",
    "ledger",
    "routing",
    "telemetry",
    "pipeline",
    "cache",
    "responses",
    "prompts",
}
_LATER_SECTIONS: set[str] = set()  # sections a later version will read (none at present)
_MSGSPEC_PATH = re.compile(r" - at `\$(.*)`$")


class ConfigError(Exception):
    """The config is invalid; `errors` lists every problem as `path: reason`."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


def load_config(raw: Any, env: Mapping[str, str] | None = None) -> GatecoreConfig:
    """Validate an already parsed config document and return the typed config."""
    errors: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"<root>: expected a mapping of sections, got {type(raw).__name__}"])
    doc: dict[str, Any] = interpolate(raw, os.environ if env is None else env, "", errors)
    for key in doc:
        if key in _LATER_SECTIONS:
            errors.append(f"{key}: section not supported by this version of gatecore")
        elif key not in _SECTIONS:
            errors.append(f"{key}: unknown section (expected one of {', '.join(sorted(_SECTIONS))})")

    server = _convert(doc.get("server", {}), ServerConfig, "server", errors)
    provider_items = [
        (i, p)
        for i, item in enumerate(_as_list(doc.get("providers", []), "providers", errors))
        if (p := _convert(item, ProviderConfig, f"providers[{i}]", errors)) is not None
    ]
    model_items = [
        (i, m)
        for i, item in enumerate(_as_list(doc.get("models", []), "models", errors))
        if (m := _model(item, f"models[{i}]", errors)) is not None
    ]
    providers = [p for _, p in provider_items]
    models = [m for _, m in model_items]
    auth = _auth(doc.get("auth", {}), errors)
    store = _convert(doc.get("store", {}), StoreConfig, "store", errors)
    limits = _convert(doc.get("limits", {}), LimitsConfig, "limits", errors)
    budgets = _convert(doc.get("budgets", {}), BudgetsConfig, "budgets", errors)
    redis = _convert(doc["redis"], RedisConfig, "redis", errors) if doc.get("redis") is not None else None
    ledger = _convert(doc.get("ledger", {}), LedgerConfig, "ledger", errors)
    routing = _convert(doc.get("routing", {}), RoutingDefaults, "routing", errors)
    telemetry = _convert(doc.get("telemetry", {}), TelemetryConfig, "telemetry", errors)
    pipeline = _convert(doc.get("pipeline", {}), PipelineConfig, "pipeline", errors)
    cache = _convert(doc.get("cache", {}), CacheConfig, "cache", errors)
    guardrails = [
        g
        for i, item in enumerate(_as_list(doc.get("guardrails", []), "guardrails", errors))
        if (g := _convert(item, GuardrailConfig, f"guardrails[{i}]", errors)) is not None
    ]
    prompts = _convert(doc.get("prompts", {}), PromptsConfig, "prompts", errors)
    responses = _convert(doc.get("responses", {}), ResponsesConfig, "responses", errors)
    config = GatecoreConfig(
        server=server or ServerConfig(),
        providers=providers,
        models=models,
        auth=auth or AuthConfig(),
        store=store or StoreConfig(),
        limits=limits or LimitsConfig(),
        budgets=budgets or BudgetsConfig(),
        redis=redis,
        ledger=ledger or LedgerConfig(),
        routing=routing or RoutingDefaults(),
        telemetry=telemetry or TelemetryConfig(),
        pipeline=pipeline or PipelineConfig(),
        cache=cache or CacheConfig(),
        guardrails=guardrails,
        prompts=prompts or PromptsConfig(),
        responses=responses or ResponsesConfig(),
    )
    # Cross-references are checked even when some items failed to decode; names of those items still
    # count as defined so that one typo is not reported twice.
    errors.extend(
        validate_config(
            config,
            provider_names=_raw_names(doc.get("providers")),
            model_names=_raw_names(doc.get("models")),
            provider_index=[i for i, _ in provider_items],
            model_index=[i for i, _ in model_items],
        )
    )
    if errors:
        raise ConfigError(errors)
    return config


def _raw_names(items: Any) -> set[str]:
    if not isinstance(items, list):
        return set()
    return {item["name"] for item in items if isinstance(item, dict) and isinstance(item.get("name"), str)}


def _model(item: Any, path: str, errors: list[str]) -> ModelConfig | None:
    # Decode deployments one by one so each bad deployment is reported with its own index.
    if isinstance(item, dict) and isinstance(item.get("deployments"), list):
        before = len(errors)
        deployments = [
            _convert(d, DeploymentConfig, f"{path}.deployments[{j}]", errors)
            for j, d in enumerate(item["deployments"])
        ]
        if len(errors) > before:
            rest = {k: v for k, v in item.items() if k != "deployments"}
            _convert({**rest, "deployments": []}, ModelConfig, path, errors)
            return None
        item = {**item, "deployments": [msgspec.to_builtins(d) for d in deployments]}
    return _convert(item, ModelConfig, path, errors)


def _auth(raw: Any, errors: list[str]) -> AuthConfig | None:
    if isinstance(raw, dict) and isinstance(raw.get("keys"), list):
        before = len(errors)
        for j, k in enumerate(raw["keys"]):
            _convert(k, StaticKeyConfig, f"auth.keys[{j}]", errors)
        if len(errors) > before:
            return None
    return _convert(raw, AuthConfig, "auth", errors)


def _as_list(value: Any, path: str, errors: list[str]) -> list[Any]:
    if isinstance(value, list):
        return value
    errors.append(f"{path}: expected a list, got {type(value).__name__}")
    return []


def _convert(value: Any, kind: type[T], path: str, errors: list[str]) -> T | None:
    try:
        return msgspec.convert(value, kind, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _MSGSPEC_PATH.search(message)
        where = path + (match.group(1) if match else "")
        reason = message[: match.start()] if match else message
        errors.append(f"{where}: {_lower_first(reason)}")
        return None


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
