"""Checks across sections that types alone cannot express (references, names, URLs, ranges)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from gatecore.config.cache import validate_cache
from gatecore.config.guardrails import validate_guardrails
from gatecore.config.jwt import validate_jwt_config
from gatecore.config.limits import validate_limits
from gatecore.config.pipeline import validate_pipeline
from gatecore.config.queue import queue_errors, saturation_errors, tokenizer_errors
from gatecore.config.routing import (
    STRATEGIES,
    BreakerConfig,
    EngineMetricsConfig,
    HealthCheckConfig,
    ModelRoutingConfig,
    OutlierConfig,
    QuotaConfig,
    RetriesConfig,
)
from gatecore.config.schema import (
    CHAT_TEMPLATES,
    DEFAULT_BASE_URLS,
    FORWARD_HEADER_KINDS,
    PROVIDER_KINDS,
    TOKENIZERS,
    UNAUTHENTICATED,
    AuthConfig,
    DeploymentPricing,
    GatecoreConfig,
    LedgerConfig,
    ProviderConfig,
    StoreConfig,
    TimeoutsConfig,
    bedrock_region,
)
from gatecore.config.telemetry import validate_tracing


def validate_config(
    config: GatecoreConfig,
    provider_names: set[str] | None = None,
    model_names: set[str] | None = None,
    provider_index: list[int] | None = None,
    model_index: list[int] | None = None,
) -> list[str]:
    """Return every semantic error in `config` as `path: reason` (empty when valid).

    `provider_names` and `model_names` are names defined in the file whose entries failed to decode:
    references to them are not reported again. `provider_index` and `model_index` give each decoded
    entry's position in the file when some entries were skipped, so paths point at the right item.
    """
    provider_at = provider_index or list(range(len(config.providers)))
    model_at = model_index or list(range(len(config.models)))
    errors: list[str] = []
    server = config.server
    if not 1 <= server.port <= 65535:
        errors.append(f"server.port: {server.port} is not a TCP port")
    if server.workers < 1:
        errors.append("server.workers: must be at least 1")
    if server.max_body_bytes < 1024:
        errors.append("server.max_body_bytes: must be at least 1024")
    if not 0 < server.body_read_timeout_s <= 3600:
        errors.append("server.body_read_timeout_s: must be greater than 0 and at most 3600")
    if server.body_log_max_bytes < 0:
        errors.append("server.body_log_max_bytes: must be 0 (off) or more")
    if server.worker_max_rss_mb < 0:
        errors.append("server.worker_max_rss_mb: must be 0 (off) or more")
    if server.shutdown_grace_s < 0:
        errors.append("server.shutdown_grace_s: must be 0 or more")
    if not 0 <= server.drain_delay_s <= 300:
        errors.append("server.drain_delay_s: must be between 0 and 300")
    if not server.disconnect_watch_after > 0:
        errors.append("server.disconnect_watch_after: must be greater than 0")
    errors.extend(_timeouts(server.timeouts, "server.timeouts"))
    if not config.telemetry.metrics_flush_s > 0:
        errors.append("telemetry.metrics_flush_s: must be greater than 0")
    errors.extend(validate_tracing(config.telemetry.tracing))
    errors.extend(validate_pipeline(config.pipeline))
    errors.extend(_unauthenticated(config.auth))
    if not 0 < config.responses.retention_days <= 3650:
        errors.append("responses.retention_days: must be more than 0 and at most 3650")

    providers: dict[str, str] = {}
    for i, provider in zip(provider_at, config.providers, strict=True):
        path = f"providers[{i}]"
        if provider.name in providers:
            errors.append(f"{path}.name: duplicate provider name '{provider.name}'")
        providers[provider.name] = provider.kind
        if provider.kind not in PROVIDER_KINDS:
            errors.append(f"{path}.kind: unknown provider kind '{provider.kind}'")
        if provider.tokenizer not in TOKENIZERS:
            errors.append(f"{path}.tokenizer: unknown tokenizer '{provider.tokenizer}'")
        if provider.kind == "bedrock":
            errors.extend(_bedrock(provider, path))
        elif provider.kind in PROVIDER_KINDS and provider.kind != "echo":
            base_url = provider.base_url or DEFAULT_BASE_URLS.get(provider.kind)
            errors.extend(_base_url(base_url, f"{path}.base_url"))
        if provider.chat_template not in CHAT_TEMPLATES:
            known = ", ".join(CHAT_TEMPLATES)
            errors.append(f"{path}.chat_template: unknown template '{provider.chat_template}' ({known})")
        if provider.default_max_tokens < 1:
            errors.append(f"{path}.default_max_tokens: must be at least 1")
        errors.extend(_forward_headers(provider, path))
        if provider.responses not in (None, "native", "translate"):
            errors.append(f"{path}.responses: must be 'native' or 'translate'")
        elif provider.responses == "native" and provider.kind not in ("openai", "azure"):
            errors.append(f"{path}.responses: 'native' needs an upstream of kind openai or azure")
        if provider.unsupported_tools not in ("drop", "reject"):
            errors.append(f"{path}.unsupported_tools: must be 'drop' or 'reject'")

    names: set[str] = set()
    for i, model in zip(model_at, config.models, strict=True):
        path = f"models[{i}]"
        if not model.name:
            errors.append(f"{path}.name: must not be empty")
        if model.name in names:
            errors.append(f"{path}.name: duplicate model name '{model.name}'")
        names.add(model.name)
        if not model.deployments:
            errors.append(f"{path}.deployments: a model needs at least one deployment")
        for j, deployment in enumerate(model.deployments):
            if deployment.provider not in providers and deployment.provider not in (provider_names or ()):
                errors.append(f"{path}.deployments[{j}].provider: unknown provider '{deployment.provider}'")
            if not deployment.weight > 0:
                errors.append(f"{path}.deployments[{j}].weight: must be greater than 0")
            if deployment.model == "*" and not model.name.endswith("*"):
                errors.append(f"{path}.deployments[{j}].model: '*' needs a model name ending in '*'")
            if deployment.pricing is not None:
                errors.extend(_pricing(deployment.pricing, f"{path}.deployments[{j}].pricing"))
            if deployment.metrics_url is not None:
                errors.extend(_base_url(deployment.metrics_url, f"{path}.deployments[{j}].metrics_url"))
            if deployment.context_window is not None and deployment.context_window < 1:
                errors.append(f"{path}.deployments[{j}].context_window: must be at least 1 token")
            if isinstance(deployment.health_check, HealthCheckConfig):
                errors.extend(_health_check(deployment.health_check, f"{path}.deployments[{j}].health_check"))
            if deployment.tokenizer is not None:
                errors.extend(tokenizer_errors(deployment.tokenizer, f"{path}.deployments[{j}].tokenizer"))
        if model.timeouts is not None:
            errors.extend(_timeouts(model.timeouts, f"{path}.timeouts"))
        if model.context_window is not None and model.context_window < 1:
            errors.append(f"{path}.context_window: must be at least 1 token")
        if model.retries is not None:
            errors.extend(_retries(model.retries, f"{path}.retries"))
        errors.extend(_model_routing(model.routing, f"{path}.routing"))
        if model.queue is not None:
            errors.extend(queue_errors(model.queue, f"{path}.queue"))
    for i, model in zip(model_at, config.models, strict=True):
        for field in ("fallbacks", "context_fallbacks", "content_policy_fallbacks"):
            for j, fallback in enumerate(getattr(model, field)):
                if fallback not in names and fallback not in (model_names or ()):
                    errors.append(f"models[{i}].{field}[{j}]: unknown model '{fallback}'")

    seen_keys: set[str] = set()
    for i, key in enumerate(config.auth.keys):
        path = f"auth.keys[{i}]"
        if len(key.key) < 8:
            errors.append(f"{path}.key: must be at least 8 characters")
        if key.key in seen_keys or key.key == config.auth.master_key:
            errors.append(f"{path}.key: duplicate key")
        seen_keys.add(key.key)
        for j, allowed in enumerate(key.models or []):
            if allowed not in names and allowed not in (model_names or ()):
                errors.append(f"{path}.models[{j}]: unknown model '{allowed}'")
    if config.auth.master_key is not None and len(config.auth.master_key) < 8:
        errors.append("auth.master_key: must be at least 8 characters")
    if config.auth.key_hash_secret is not None and len(config.auth.key_hash_secret) < 16:
        errors.append("auth.key_hash_secret: must be at least 16 characters")
    if config.auth.rotation_grace_s < 0:
        errors.append("auth.rotation_grace_s: must be 0 or more")
    for i, key in enumerate(config.auth.keys):
        for field in ("rpm", "tpm", "max_parallel", "budget_usd"):
            value = getattr(key, field)
            if value is not None and value < 0:
                errors.append(f"auth.keys[{i}].{field}: must be 0 or more")
    if config.auth.jwt is not None:
        errors.extend(
            validate_jwt_config(
                config.auth.jwt, "auth.jwt", lambda name: name in names or name in (model_names or ())
            )
        )
    errors.extend(_store(config.store))
    errors.extend(validate_limits(config.limits, config.budgets, config.redis))
    model_caches = {m.name: m.cache for m in config.models if m.cache is not None}
    errors.extend(validate_cache(config.cache, model_caches, config.redis is not None, config.store.url))
    embedding = config.cache.semantic.embedding_model if config.cache.semantic is not None else None
    if embedding is not None and embedding not in names and embedding not in (model_names or ()):
        errors.append(f"cache.semantic.embedding_model: unknown model '{embedding}'")
    for section, named in (("limits", config.limits.models), ("budgets", config.budgets.models)):
        unknown = [name for name in named if name not in names and name not in (model_names or ())]
        errors.extend(f"{section}.models.{name}: unknown model '{name}'" for name in unknown)
    errors.extend(_ledger(config.ledger))
    errors.extend(validate_guardrails(config.guardrails, {m.name: m.guardrails for m in config.models}))
    errors.extend(_retries(config.routing.retries, "routing.retries"))
    errors.extend(_breaker(config.routing.breaker, "routing.breaker"))
    errors.extend(_engine_metrics(config.routing.engine_metrics, "routing.engine_metrics"))
    errors.extend(_health_check(config.routing.health_check, "routing.health_check"))
    return errors


def _pricing(pricing: DeploymentPricing, path: str) -> list[str]:
    errors = []
    for field in ("input_per_1m", "output_per_1m", "cached_input_per_1m", "gpu_hour_usd"):
        value = getattr(pricing, field)
        if value is not None and value < 0:
            errors.append(f"{path}.{field}: must be 0 or more")
    if pricing.gpus < 1:
        errors.append(f"{path}.gpus: must be at least 1")
    if pricing.gpu_hour_usd is not None and (
        pricing.input_per_1m is not None or pricing.output_per_1m is not None
    ):
        errors.append(f"{path}: give token prices or gpu_hour_usd, not both")
    return errors


def _ledger(ledger: LedgerConfig) -> list[str]:
    errors = []
    if ledger.batch_rows < 1:
        errors.append("ledger.batch_rows: must be at least 1")
    if ledger.max_queue_rows < ledger.batch_rows:
        errors.append("ledger.max_queue_rows: must be at least ledger.batch_rows")
    intervals = ("flush_interval_s", "write_timeout_s", "retry_interval_s")
    errors.extend(f"ledger.{f}: must be greater than 0" for f in intervals if not getattr(ledger, f) > 0)
    return errors


def _retries(retries: RetriesConfig, path: str) -> list[str]:
    errors = []
    if not 0 <= retries.count <= 20:
        errors.append(f"{path}.count: must be between 0 and 20")
    if not 1 <= retries.per_deployment <= 20:
        errors.append(f"{path}.per_deployment: must be between 1 and 20")
    names = ("backoff_s", "backoff_max_s", "retry_after_max_s")
    errors.extend(f"{path}.{name}: must be 0 or more" for name in names if getattr(retries, name) < 0)
    if not retries.budget_s > 0:
        errors.append(f"{path}.budget_s: must be greater than 0")
    return errors


def _breaker(breaker: BreakerConfig, path: str) -> list[str]:
    errors = []
    if breaker.failures < 1:
        errors.append(f"{path}.failures: must be at least 1")
    if not 0 < breaker.error_rate <= 1:
        errors.append(f"{path}.error_rate: must be greater than 0 and at most 1")
    if breaker.min_requests < 1:
        errors.append(f"{path}.min_requests: must be at least 1")
    names = ("window_s", "cooldown_s")
    errors.extend(
        f"{path}.{name}: must be greater than 0" for name in names if not getattr(breaker, name) > 0
    )
    return errors


def _engine_metrics(metrics: EngineMetricsConfig, path: str) -> list[str]:
    names = ("interval_s", "timeout_s", "stale_after_s")
    return [f"{path}.{name}: must be greater than 0" for name in names if not getattr(metrics, name) > 0]


def _model_routing(routing: ModelRoutingConfig, path: str) -> list[str]:
    errors = []
    if routing.strategy not in STRATEGIES:
        errors.append(f"{path}.strategy: unknown strategy '{routing.strategy}' ({', '.join(STRATEGIES)})")
    if routing.max_queue < 0:
        errors.append(f"{path}.max_queue: must be 0 (never shed) or more")
    if routing.shed_status not in (429, 503):
        errors.append(f"{path}.shed_status: must be 429 or 503")
    if not 0 < routing.ewma_alpha <= 1:
        errors.append(f"{path}.ewma_alpha: must be greater than 0 and at most 1")
    if not 0 <= routing.prefix_affinity_bytes <= 1024 * 1024:
        errors.append(f"{path}.prefix_affinity_bytes: must be between 0 (off) and 1048576")
    if not (routing.prefix_load_factor == 0 or 1 <= routing.prefix_load_factor <= 100):
        errors.append(f"{path}.prefix_load_factor: must be 0 (unbounded) or between 1 and 100")
    if routing.hedge is not None:
        if not routing.hedge.delay_s > 0:
            errors.append(f"{path}.hedge.delay_s: must be greater than 0")
        if routing.hedge.min_samples < 1:
            errors.append(f"{path}.hedge.min_samples: must be at least 1")
    if routing.quota is not None:
        errors.extend(_quota(routing.quota, f"{path}.quota"))
    if routing.outliers is not None:
        errors.extend(_outliers(routing.outliers, f"{path}.outliers"))
    if routing.saturation is not None:
        errors.extend(saturation_errors(routing.saturation, f"{path}.saturation"))
    return errors


def _health_check(check: HealthCheckConfig, path: str) -> list[str]:
    errors: list[str] = []
    if check.path is not None and not check.path.startswith("/"):
        errors.append(f"{path}.path: must start with '/'")
    names = ("interval_s", "timeout_s")
    errors.extend(f"{path}.{name}: must be greater than 0" for name in names if not getattr(check, name) > 0)
    names = ("unhealthy_after", "healthy_after")
    errors.extend(f"{path}.{name}: must be at least 1" for name in names if getattr(check, name) < 1)
    return errors


def _quota(quota: QuotaConfig, path: str) -> list[str]:
    errors: list[str] = []
    names = ("min_requests", "min_tokens")
    errors.extend(f"{path}.{name}: must be 0 or more" for name in names if getattr(quota, name) < 0)
    if not quota.default_reset_s > 0:
        errors.append(f"{path}.default_reset_s: must be greater than 0")
    return errors


def _outliers(outliers: OutlierConfig, path: str) -> list[str]:
    errors: list[str] = []
    names = ("interval_s", "eject_s")
    errors.extend(
        f"{path}.{name}: must be greater than 0" for name in names if not getattr(outliers, name) > 0
    )
    if outliers.min_requests < 1:
        errors.append(f"{path}.min_requests: must be at least 1")
    if not 0 < outliers.error_rate_margin <= 1:
        errors.append(f"{path}.error_rate_margin: must be greater than 0 and at most 1")
    if not outliers.latency_factor > 1:
        errors.append(f"{path}.latency_factor: must be greater than 1")
    if outliers.latency_min_s < 0:
        errors.append(f"{path}.latency_min_s: must be 0 or more")
    if not 0 < outliers.max_ejected <= 1:
        errors.append(f"{path}.max_ejected: must be greater than 0 and at most 1")
    return errors


def _store(store: StoreConfig) -> list[str]:
    errors = []
    url = store.url
    if url is not None and not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        errors.append("store.url: must start with sqlite:///, postgresql:// or postgres://")
    if not 0.01 <= store.poll_interval_s <= 60:
        errors.append("store.poll_interval_s: must be between 0.01 and 60 seconds")
    if not 1 <= store.pool_size <= 100:
        errors.append("store.pool_size: must be between 1 and 100")
    if not 0 <= store.statement_timeout_s <= 3600:
        errors.append("store.statement_timeout_s: must be between 0 (none) and 3600 seconds")
    return errors


def _bedrock(provider: ProviderConfig, path: str) -> list[str]:
    errors = []
    if provider.base_url is not None:
        errors.extend(_base_url(provider.base_url, f"{path}.base_url"))
    if not bedrock_region(provider):
        errors.append(
            f"{path}.aws_region: required unless base_url is https://bedrock-runtime.<region>.amazonaws.com"
        )
    missing = [f for f in ("aws_access_key_id", "aws_secret_access_key") if not getattr(provider, f)]
    errors.extend(f"{path}.{field}: required for provider kind 'bedrock'" for field in missing)
    return errors


def _base_url(url: str | None, path: str) -> list[str]:
    if not url:
        return [f"{path}: required for this provider kind"]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"{path}: '{url}' is not an http(s) URL"]
    try:
        parts.port  # noqa: B018 - raises on an invalid port
    except ValueError:
        return [f"{path}: '{url}' has an invalid port"]
    if parts.query or parts.fragment:
        return [f"{path}: must not have a query or fragment"]
    return []


def _timeouts(timeouts: TimeoutsConfig, path: str) -> list[str]:
    errors = []
    for name in ("connect", "first_byte", "idle", "total"):
        value = getattr(timeouts, name)
        if value is not None and not value > 0:
            errors.append(f"{path}.{name}: must be greater than 0")
    return errors


def _unauthenticated(auth: AuthConfig) -> list[str]:
    """Auth is on with any credential source; without one, only an explicit setting serves requests."""
    if auth.unauthenticated not in UNAUTHENTICATED:
        return [f"auth.unauthenticated: must be one of {', '.join(UNAUTHENTICATED)}"]
    if auth.has_credentials and auth.unauthenticated != "refuse":
        return ["auth.unauthenticated: only for a gateway with no credential source; auth is on with one"]
    if not auth.has_credentials and auth.unauthenticated == "refuse":
        return [
            "auth: no credential source (master_key, keys, jwt or key_hash_secret); set one "
            "(GATECORE_MASTER_KEY without a config file), or serve without keys explicitly with "
            "auth.unauthenticated: loopback (GATECORE_UNAUTHENTICATED=loopback)"
        ]
    return []


# Headers a client may never have forwarded: credentials (the client's key is gatecore's, not the
# upstream's) and those gatecore writes itself.
_NOT_FORWARDED = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "upgrade",
        "accept-encoding",
        "x-request-id",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
    }
)
_HEADER_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def _forward_headers(provider: ProviderConfig, path: str) -> list[str]:
    if not provider.forward_headers:
        return []
    if provider.kind not in FORWARD_HEADER_KINDS:
        kinds = ", ".join(FORWARD_HEADER_KINDS)
        return [f"{path}.forward_headers: provider kind '{provider.kind}' forwards no headers (only {kinds})"]
    errors = []
    for j, name in enumerate(provider.forward_headers):
        lowered = name.lower()
        if not _HEADER_NAME.fullmatch(lowered):
            errors.append(f"{path}.forward_headers[{j}]: not a header name (letters, digits, '-'; 1-64)")
        elif lowered in _NOT_FORWARDED or lowered.startswith(("x-gatecore-", "sec-")):
            errors.append(f"{path}.forward_headers[{j}]: '{lowered}' may not be forwarded")
        elif provider.kind == "bedrock" and lowered != "anthropic-beta":
            errors.append(f"{path}.forward_headers[{j}]: bedrock forwards only anthropic-beta (in the body)")
    return errors
