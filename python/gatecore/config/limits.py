"""Config Structs of the `limits`, `budgets` and `redis` sections (DESIGN.md §3).

Per-key, user, team and org limits come from identity (KeyPolicy and its Scopes); these sections add
the limits that belong to no caller (per model, per deployment, global) and how they are enforced.
"""

from __future__ import annotations

import msgspec

from gatecore.store.redis_url import check_redis_url

FAIL_MODES = ("open", "closed")
BUDGET_PERIODS = ("daily", "weekly", "monthly", "rolling", "total")
BUDGET_MODES = ("hard", "soft")


class RateLimitConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Limits of one scope. Unset: no limit of that kind."""

    rpm: int | None = None  # requests per minute
    tpm: int | None = None  # tokens (prompt + completion) per minute
    max_parallel: int | None = None  # requests in flight
    # When Redis cannot be reached: `open` (a local bucket in its place) or `closed` (503).
    # Unset: `limits.on_redis_error`.
    on_redis_error: str | None = None


class LimitsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Global limits over every request of the server (or of every replica, with Redis).
    global_: RateLimitConfig | None = msgspec.field(default=None, name="global")
    # Per client-facing model name, and per deployment (`<provider>/<upstream model>`, as shown in
    # x-gatecore-model): a provider's own limits, so the gateway queues nothing it would refuse.
    models: dict[str, RateLimitConfig] = msgspec.field(default_factory=dict)
    deployments: dict[str, RateLimitConfig] = msgspec.field(default_factory=dict)
    # Output tokens assumed for a request without max_tokens when admitting it against a tpm limit;
    # corrected to the real usage when it ends.
    default_max_tokens: int = 1024
    # The default for every limit (identity limits included) when Redis is unreachable.
    on_redis_error: str = "open"
    # Cells of the shared-memory table the workers of one server share (16 bytes each).
    table_slots: int = 65536


class ModelBudgetConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    usd: float
    period: str | None = None  # unset: budgets.period
    mode: str | None = None  # unset: budgets.mode


class BudgetsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Spend limits in USD: per key (KeyPolicy.budget_usd), user, team, org (their budget_usd) and per
    model (`models`), each over `period`."""

    # daily / weekly (from Monday) / monthly: calendar-aligned in `timezone`; rolling: windows of
    # `rolling_s` seconds; total: never resets.
    period: str = "monthly"
    timezone: str = "UTC"
    rolling_s: float = 30 * 86400.0
    # hard: refuse with 429 budget_exceeded once spent; soft: serve on and POST `alert_webhook` once
    # per scope and period when crossed.
    mode: str = "hard"
    alert_webhook: str | None = None
    models: dict[str, ModelBudgetConfig] = msgspec.field(default_factory=dict)
    on_redis_error: str = "open"


class RedisConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Shared limits and budgets across replicas. Every replica must name the same server."""

    # redis://host:6379/0, rediss://… for TLS, redis+sentinel://h:26379,h:26379/mymaster,
    # redis+cluster://h:7000,h:7001 (store/redis_client.py)
    url: str
    key_prefix: str = "gatecore:"
    # Seconds a command may take before Redis counts as unreachable for this request.
    timeout_s: float = 0.25
    # After a failure, seconds during which requests do not try Redis (the fail mode applies).
    retry_after_s: float = 1.0


def validate_limits(limits: LimitsConfig, budgets: BudgetsConfig, redis: RedisConfig | None) -> list[str]:
    """`path: reason` for every value the types cannot reject."""
    errors: list[str] = []
    scopes = [("limits.global", limits.global_)] if limits.global_ is not None else []
    scopes += [(f"limits.models.{name}", rule) for name, rule in limits.models.items()]
    scopes += [(f"limits.deployments.{name}", rule) for name, rule in limits.deployments.items()]
    for path, rule in scopes:
        for field in ("rpm", "tpm", "max_parallel"):
            value = getattr(rule, field)
            if value is not None and value < 1:
                errors.append(f"{path}.{field}: must be at least 1")
        if rule.on_redis_error is not None and rule.on_redis_error not in FAIL_MODES:
            errors.append(f"{path}.on_redis_error: must be 'open' or 'closed'")
    if limits.on_redis_error not in FAIL_MODES:
        errors.append("limits.on_redis_error: must be 'open' or 'closed'")
    if limits.default_max_tokens < 1:
        errors.append("limits.default_max_tokens: must be at least 1")
    if not 1024 <= limits.table_slots <= 1 << 26:
        errors.append("limits.table_slots: must be between 1024 and 67108864")
    errors.extend(_budgets(budgets))
    if redis is not None:
        if (problem := check_redis_url(redis.url)) is not None:
            errors.append(f"redis.url: {problem}")
        if not redis.timeout_s > 0:
            errors.append("redis.timeout_s: must be greater than 0")
        if redis.retry_after_s < 0:
            errors.append("redis.retry_after_s: must be 0 or more")
    return errors


def _budgets(budgets: BudgetsConfig) -> list[str]:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    errors = []
    if budgets.period not in BUDGET_PERIODS:
        errors.append(f"budgets.period: must be one of {', '.join(BUDGET_PERIODS)}")
    if budgets.mode not in BUDGET_MODES:
        errors.append("budgets.mode: must be 'hard' or 'soft'")
    try:
        ZoneInfo(budgets.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(f"budgets.timezone: unknown time zone '{budgets.timezone}'")
    if not budgets.rolling_s >= 1:
        errors.append("budgets.rolling_s: must be at least 1 second")
    if budgets.alert_webhook is not None and not budgets.alert_webhook.startswith(("http://", "https://")):
        errors.append("budgets.alert_webhook: must be an http(s) URL")
    if budgets.on_redis_error not in FAIL_MODES:
        errors.append("budgets.on_redis_error: must be 'open' or 'closed'")
    for name, model in budgets.models.items():
        path = f"budgets.models.{name}"
        if model.usd < 0:
            errors.append(f"{path}.usd: must be 0 or more")
        if model.period is not None and model.period not in BUDGET_PERIODS:
            errors.append(f"{path}.period: must be one of {', '.join(BUDGET_PERIODS)}")
        if model.mode is not None and model.mode not in BUDGET_MODES:
            errors.append(f"{path}.mode: must be 'hard' or 'soft'")
    return errors
