"""The config file: typed schema, loading with ${ENV} interpolation, and validation."""

from gatecore.config.load import ConfigError, load_config
from gatecore.config.schema import (
    AuthConfig,
    DeploymentConfig,
    GatecoreConfig,
    ModelConfig,
    ProviderConfig,
    ServerConfig,
    StaticKeyConfig,
    StoreConfig,
    TimeoutsConfig,
)
from gatecore.config.source import read_config

__all__ = [
    "AuthConfig",
    "ConfigError",
    "DeploymentConfig",
    "GatecoreConfig",
    "ModelConfig",
    "ProviderConfig",
    "ServerConfig",
    "StaticKeyConfig",
    "StoreConfig",
    "TimeoutsConfig",
    "load_config",
    "read_config",
]
