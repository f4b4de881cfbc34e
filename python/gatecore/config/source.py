"""Where a process gets its config: a file, or the environment, plus `--demo`.

The CLI validates it once before the server starts; each worker process loads it again the same way
(from the same file and environment) so no secret is copied between processes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from gatecore.config.environment import config_from_environment, with_demo
from gatecore.config.load import ConfigError, load_config
from gatecore.config.schema import GatecoreConfig
from gatecore.store.open import default_store_url

CONFIG_ENV = "GATECORE_CONFIG"
DEMO_ENV = "GATECORE_DEMO"


def read_config(path: str | None, demo: bool, env: Mapping[str, str] | None = None) -> GatecoreConfig:
    """Load and validate the config from `path` (or the environment when None), with the demo model."""
    env = os.environ if env is None else env
    doc = _read_document(path) if path else config_from_environment(env)
    if demo:
        doc = with_demo(doc)
    config = load_config(doc, env)
    if config.store.url is None:
        url = default_store_url(Path(path).resolve().parent if path else None)
        config = msgspec.structs.replace(config, store=msgspec.structs.replace(config.store, url=url))
    return config


def _read_document(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {_yaml_problem(exc)}"]) from None
    return {} if doc is None else doc


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where (line, column), never the text around it: str(exc) quotes the
    offending line, and a config line is often a secret (`api_key: ...`, `master_key: ...`)."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return type(exc).__name__
    parts = []
    if exc.context:
        parts.append(exc.context + _where(exc.context_mark))
    if exc.problem:
        parts.append(exc.problem + _where(exc.problem_mark))
    return "; ".join(parts) or type(exc).__name__


def _where(mark: Any) -> str:
    return "" if mark is None else f" (line {mark.line + 1}, column {mark.column + 1})"


def read_config_from_process_env() -> GatecoreConfig:
    """The config of a worker process, as the CLI described it in the environment."""
    return read_config(os.environ.get(CONFIG_ENV) or None, os.environ.get(DEMO_ENV) == "1")
