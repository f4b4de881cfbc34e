"""`GET /v1/models` and `/v1/models/{id}`: owner, context window and capabilities, from config or the
shipped model table (matched by the deployment's upstream model name), through the openai SDK and raw
HTTP; config validation of the new fields."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from . import raw_http
from .conftest import make_client
from .gateway import MASTER_KEY, Gateway, run_cli, running_gateway, write_config

TEAM_KEY = "sk-models-team-7d1e"
NO_CAPS = {"tools": False, "vision": False, "json": False}
ALL_CAPS = {"tools": True, "vision": True, "json": True}


def _model(name: str, provider: str, upstream: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "deployments": [{"provider": provider, "model": upstream}], **extra}


def _config() -> dict[str, Any]:
    # Nothing is called upstream: the catalogue comes from config alone, so the URLs need not answer.
    providers = [
        {"name": "oai", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"},
        {"name": "claude", "kind": "anthropic", "base_url": "http://127.0.0.1:9"},
        {"name": "google", "kind": "gemini", "base_url": "http://127.0.0.1:9"},
        {"name": "aws", "kind": "bedrock", "aws_region": "us-east-1", "aws_access_key_id": "AKIDMODELS",
         "aws_secret_access_key": "models-secret"},
        {"name": "local", "kind": "ollama", "base_url": "http://127.0.0.1:9"},
    ]  # fmt: skip
    models = [
        _model("gpt", "oai", "gpt-4o-2024-08-06", owned_by="platform-team"),
        _model("sonnet", "claude", "claude-3-5-sonnet-latest"),
        _model("gem-pro", "google", "models/gemini-1.5-pro-002"),
        _model("aws-claude", "aws", "us.anthropic.claude-3-7-sonnet-20250219-v1:0"),
        _model("llama", "local", "llama3.1:8b"),
        _model("hf-vision", "oai", "meta-llama/Llama-3.2-11B-Vision-Instruct"),
        _model("gpt4-classic", "oai", "gpt-4-0613"),
        _model("finetune", "oai", "ft-mystery-7", context_window=32000, capabilities={"tools": True}),
        _model("narrow-gpt", "oai", "gpt-4o", context_window=64000, capabilities={"vision": False}),
        _model("mystery", "oai", "acme-model-x"),
        _model("openai/*", "oai", "*"),
    ]
    keys = [{"key": TEAM_KEY, "name": "team", "models": ["gpt", "openai/*"]}]
    return {"providers": providers, "models": models, "auth": {"master_key": MASTER_KEY, "keys": keys}}


EXPECTED: dict[str, tuple[int | None, dict[str, bool]]] = {
    "gpt": (128_000, ALL_CAPS),
    "sonnet": (200_000, ALL_CAPS),
    "gem-pro": (2_097_152, ALL_CAPS),
    "aws-claude": (200_000, ALL_CAPS),
    "llama": (131_072, {"tools": True, "vision": False, "json": False}),
    "hf-vision": (131_072, {"tools": False, "vision": True, "json": False}),
    "gpt4-classic": (8_192, {"tools": True, "vision": False, "json": False}),
    # Configured fields win; the ones left unset come from the table (else false).
    "finetune": (32_000, {"tools": True, "vision": False, "json": False}),
    "narrow-gpt": (64_000, {"tools": True, "vision": False, "json": True}),
    "mystery": (None, NO_CAPS),
    "openai/*": (None, NO_CAPS),
}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("models")
    config = _config()
    path = write_config(config, workdir / "gatecore.yaml")
    with running_gateway(["--config", str(path)], workdir, config=config) as g:
        yield g


def _get(gw: Gateway, path: str, key: str = MASTER_KEY) -> raw_http.RawResponse:
    return raw_http.request(gw.port, "GET", path, headers={"Authorization": f"Bearer {key}"})


def test_list_has_owner_window_and_capabilities(gw: Gateway) -> None:
    resp = _get(gw, "/v1/models")
    assert resp.status == 200
    body = resp.json()
    assert body["object"] == "list"
    by_id = {m["id"]: m for m in body["data"]}
    assert list(by_id) == list(EXPECTED)  # config order, each once
    for name, (window, caps) in EXPECTED.items():
        entry = by_id[name]
        assert entry["object"] == "model" and isinstance(entry["created"], int)
        assert (entry["context_window"], entry["capabilities"]) == (window, caps), name
    assert by_id["gpt"]["owned_by"] == "platform-team"
    assert by_id["sonnet"]["owned_by"] == "claude"  # no owned_by configured: the provider's name


def test_openai_sdk_reads_the_list_and_the_extra_fields(gw: Gateway) -> None:
    with make_client(gw) as client:
        models = {m.id: m for m in client.models.list()}
        one = client.models.retrieve("gem-pro")
    assert set(models) == set(EXPECTED)
    extra = models["llama"].model_extra or {}
    assert extra["context_window"] == 131_072
    assert extra["capabilities"] == {"tools": True, "vision": False, "json": False}
    assert one.id == "gem-pro" and one.owned_by == "google"
    assert (one.model_extra or {})["context_window"] == 2_097_152


def test_one_model_by_id(gw: Gateway) -> None:
    resp = _get(gw, "/v1/models/finetune")
    assert resp.status == 200
    assert resp.json() == {
        "id": "finetune",
        "object": "model",
        "created": resp.json()["created"],
        "owned_by": "oai",
        "context_window": 32000,
        "capabilities": {"tools": True, "vision": False, "json": False},
    }


@pytest.mark.parametrize(
    ("name", "window", "caps"),
    [
        ("openai/gpt-4.1-mini", 1_047_576, ALL_CAPS),
        ("openai/o1-mini-2024-09-12", 128_000, NO_CAPS),  # o1-mini, not o1: the longest prefix wins
        ("openai/something-new", None, NO_CAPS),
    ],
)
def test_wildcard_model_by_full_name_uses_the_forwarded_name(
    gw: Gateway, name: str, window: int | None, caps: dict[str, bool]
) -> None:
    resp = _get(gw, f"/v1/models/{name}")
    assert resp.status == 200
    body = resp.json()
    assert body["id"] == name
    assert (body["context_window"], body["capabilities"]) == (window, caps)


def test_a_key_sees_only_its_models(gw: Gateway) -> None:
    listed = [m["id"] for m in _get(gw, "/v1/models", TEAM_KEY).json()["data"]]
    assert listed == ["gpt", "openai/*"]
    assert _get(gw, "/v1/models/gpt", TEAM_KEY).json()["context_window"] == 128_000
    hidden = _get(gw, "/v1/models/sonnet", TEAM_KEY)
    assert hidden.status == 404
    assert hidden.json()["error"]["code"] == "model_not_found"


def test_unknown_model_is_404(gw: Gateway) -> None:
    with make_client(gw) as client, pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"context_window": 0}, "models[0].context_window: must be at least 1 token"),
        ({"capabilities": {"tools": True, "audio": True}}, "models[0]"),
        ({"capabilities": {"vision": "yes"}}, "models[0]"),
    ],
)
def test_check_rejects_bad_model_fields(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    config = _config()
    config["models"][0].update(change)
    result = run_cli(["check", "--config", str(write_config(config, tmp_path / "bad.yaml"))])
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stdout + result.stderr


def test_check_accepts_the_fields(tmp_path: Path) -> None:
    result = run_cli(["check", "--config", str(write_config(_config(), tmp_path / "ok.yaml"))])
    assert result.returncode == 0, result.stdout + result.stderr
