"""Config loading: interpolation, typed decoding, and every error reported with its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gatecore.config import ConfigError, load_config, read_config
from gatecore.config.interpolate import interpolate
from gatecore.config.schema import responses_native
from gatecore.upstream.timeouts import Timeouts


def _errors(doc: Any, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(doc, env or {})
    return info.value.errors


MINIMAL: dict[str, Any] = {
    "providers": [
        {"name": "local", "kind": "openai", "base_url": "http://127.0.0.1:8000/v1", "api_key": "x"}
    ],
    "models": [{"name": "llama", "deployments": [{"provider": "local", "model": "meta/llama"}]}],
    "auth": {
        "master_key": "sk-master-123",
        "keys": [{"key": "sk-test-1", "name": "team-a", "models": ["llama"]}],
    },
}


def test_minimal_config_decodes_into_typed_structs() -> None:
    config = load_config(MINIMAL, {})
    assert config.models[0].deployments[0].model == "meta/llama"
    assert config.auth.keys[0].models == ["llama"]
    assert config.server.max_body_bytes == 32 * 1024 * 1024


def test_interpolation_uses_environment_and_defaults() -> None:
    errors: list[str] = []
    doc = {"a": "${A}", "b": ["x-${B:-dflt}-y"], "c": "${EMPTY:-fallback}", "d": "${EMPTY}", "n": 3}
    out = interpolate(doc, {"A": "1", "EMPTY": ""}, "", errors)
    assert out == {"a": "1", "b": ["x-dflt-y"], "c": "fallback", "d": "", "n": 3}
    assert errors == []
    interpolate({"p": [{"k": "${MISSING}"}]}, {}, "", errors)
    assert errors == ["p[0].k: environment variable 'MISSING' is not set"]


def test_every_error_is_reported_with_its_path() -> None:
    doc = {
        "server": {"port": "abc"},
        "providers": [
            {"name": "up", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"},
            {"name": "odd", "kind": "weird"},
            {"name": "nourl", "kind": "openai", "base_url": "ftp://x"},
        ],
        "models": [
            {"name": "a", "deployments": [{"provider": "up", "model": "m"}]},
            {"name": "b", "deployments": [{"provider": "up", "model": "m", "extra": 1}]},
            {"name": "c", "deployments": [{"provider": "up", "model": "m"}, {"provider": "x", "model": "y"}]},
            {"name": "a", "deployments": [], "fallbacks": ["nope"]},
        ],
        "auth": {"keys": [{"key": "short", "models": ["zzz", "b"]}]},
        "cache": {"scope": "org"},
    }
    errors = _errors(doc)
    assert "server.port: expected `int`, got `str`" in errors
    assert "models[1].deployments[0]: object contains unknown field `extra`" in errors
    assert "providers[1].kind: unknown provider kind 'weird'" in errors
    assert "providers[2].base_url: 'ftp://x' is not an http(s) URL" in errors
    assert "models[2].deployments[1].provider: unknown provider 'x'" in errors
    assert "models[3].name: duplicate model name 'a'" in errors
    assert "models[3].deployments: a model needs at least one deployment" in errors
    assert "models[3].fallbacks[0]: unknown model 'nope'" in errors
    assert "auth.keys[0].key: must be at least 8 characters" in errors
    assert "auth.keys[0].models[0]: unknown model 'zzz'" in errors
    assert "cache.scope: must be one of team, key, global" in errors
    # `b` failed to decode but is defined: the key's reference to it is not a second error.
    assert not any("unknown model 'b'" in e for e in errors)
    assert len(errors) == 11


def test_timeouts_layer_over_defaults() -> None:
    doc = {**MINIMAL, "server": {"timeouts": {"idle": 7}}}
    doc["models"] = [{**MINIMAL["models"][0], "timeouts": {"first_byte": 1.5}}]
    config = load_config(doc, {})
    model = config.models[0]
    t = Timeouts.resolve(config.server.timeouts, model.timeouts)
    assert (t.first_byte, t.idle, t.connect) == (1.5, 7.0, 10.0)
    assert _errors({**MINIMAL, "server": {"timeouts": {"total": 0}}}) == [
        "server.timeouts.total: must be greater than 0"
    ]


def test_read_config_from_file_environment_and_demo(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("providers: []\nmodels: []\nauth: {master_key: '${MK}'}\n")
    assert read_config(str(path), demo=False, env={"MK": "sk-master-xyz"}).auth.master_key == "sk-master-xyz"
    env_config = read_config(None, demo=True, env={"OPENAI_API_KEY": "sk-live"})
    assert [p.name for p in env_config.providers] == ["openai", "echo"]
    assert env_config.providers[0].api_key == "sk-live"
    assert [m.name for m in env_config.models] == ["openai/*", "echo"]
    path.write_text("models: [\n")
    with pytest.raises(ConfigError) as info:
        read_config(str(path), demo=False, env={})
    assert "not valid YAML" in info.value.errors[0]


def test_responses_section_and_provider_settings() -> None:
    providers = [
        {"name": "oai", "kind": "openai", "base_url": "https://api.openai.com/v1", "api_key": "x"},
        {"name": "vllm", "kind": "openai", "base_url": "http://127.0.0.1:8000/v1", "api_key": "x"},
        {"name": "az", "kind": "azure", "base_url": "https://r.openai.azure.com", "api_key": "x"},
        {"name": "vllm-native", "kind": "openai", "base_url": "http://127.0.0.1:8001/v1", "responses": "native",
         "unsupported_tools": "reject"},
    ]  # fmt: skip
    config = load_config({**MINIMAL, "providers": [*MINIMAL["providers"], *providers],
                          "responses": {"retention_days": 7, "store": False}}, {})  # fmt: skip
    assert (config.responses.retention_days, config.responses.store) == (7, False)
    native = {p.name: responses_native(p) for p in config.providers}
    assert native == {"local": False, "oai": True, "vllm": False, "az": True, "vllm-native": True}
    assert config.providers[-1].unsupported_tools == "reject"
    errors = _errors(
        {
            **MINIMAL,
            "providers": [
                *MINIMAL["providers"],
                {"name": "a", "kind": "anthropic", "api_key": "x", "responses": "native"},
                {
                    "name": "b",
                    "kind": "openai",
                    "base_url": "http://127.0.0.1:1/v1",
                    "responses": "maybe",
                    "unsupported_tools": "ignore",
                },
            ],
            "responses": {"retention_days": 0},
        }
    )
    assert "responses.retention_days: must be more than 0 and at most 3650" in errors
    assert "providers[1].responses: 'native' needs an upstream of kind openai or azure" in errors
    assert "providers[2].responses: must be 'native' or 'translate'" in errors
    assert "providers[2].unsupported_tools: must be 'drop' or 'reject'" in errors


def test_gpu_pool_settings_are_checked() -> None:
    model = {
        "name": "llama",
        "deployments": [{"provider": "local", "model": "meta/llama", "tokenizer": {"engine": True}}],
        "queue": {
            "by": "org",
            "target_in_flight": 0,
            "max_wait_s": -1,
            "classes": {"interactive": 0},
            "class_max_wait_s": {"gold": 5},
            "max_queued": 0,
            "headroom": -1,
        },
        "routing": {"saturation": {"max_waiting": -1, "max_kv_cache": 1.5}, "prefix_load_factor": 0.5},
    }
    errors = _errors({**MINIMAL, "models": [model]})
    for expected in (
        "models[0].queue.by: must be one of team, key, user",
        "models[0].queue.target_in_flight: must be between 1 and 100000",
        "models[0].queue.max_wait_s: must be greater than 0 and at most 3600",
        "models[0].queue.max_queued: must be between 1 and 1000000",
        "models[0].queue.headroom: must be between 0 (off) and 100000",
        "models[0].queue.classes.interactive: the weight must be greater than 0",
        "models[0].queue.class_max_wait_s.gold: not one of the classes",
        "models[0].routing.saturation.max_waiting: must be 0 or more",
        "models[0].routing.saturation.max_kv_cache: must be greater than 0 and at most 1",
        "models[0].routing.prefix_load_factor: must be 0 (unbounded) or between 1 and 100",
        "models[0].deployments[0].tokenizer.engine: counting with the engine's /tokenize is not supported yet; "
        "set path",
    ):
        assert expected in errors, (expected, errors)
