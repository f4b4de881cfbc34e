"""Which limits apply to a request: one `Rule` per scope and kind, named by the cell that counts it.

Scopes: the key, its user, team and org (from identity), the model, the deployment and the server
(config `limits`). A rule's `cell` is the same in every worker and every replica, so the shared
table (one machine) or Redis (many) count each scope once.
"""

from __future__ import annotations

from gatecore.config.limits import LimitsConfig, RateLimitConfig
from gatecore.policy.key_policy import KeyPolicy, Scope

RPM = 0  # requests per minute (GCRA)
TPM = 1  # tokens per minute (GCRA, cost = estimated tokens)
PARALLEL = 2  # requests in flight
BUDGET = 3  # USD per period, in micro-dollars (reserve, then settle)

MINUTE_NS = 60_000_000_000
KIND_NAMES = ("rpm", "tpm", "max_parallel", "budget")
_CACHE_LIMIT = 10_000


class Rule:
    """One limit of one scope. `label` names it in errors (`key 'ci'`, `model 'gpt-4o'`)."""

    __slots__ = (
        "cell",
        "fail_closed",
        "kind",
        "label",
        "limit",
        "limit_text",
        "period",
        "period_end",
        "period_start",
        "scope",
        "slot_name",
        "soft",
        "tag",
    )

    def __init__(self, kind: int, label: str, cell: str, limit: int, fail_closed: bool):
        self.kind = kind
        self.label = label
        self.cell = cell
        # The name of its cell in the shared-memory table: `cell`, but a budget's without its period
        # (the same cell every period, the period's `tag` in its value: rust/src/budget_cells.rs).
        self.slot_name = cell
        self.tag = 0
        self.limit = limit
        self.limit_text = str(limit)  # for the x-ratelimit-limit-* headers
        self.fail_closed = fail_closed
        # Budgets only: the period's name (`monthly`) and whether crossing the limit only alerts.
        self.period = ""
        self.soft = False
        # Budgets only: whose spend it counts (`("key", id)`, …) and since when (epoch s), so a fresh
        # counter can start from what the ledger already holds.
        self.scope: tuple[str, str] = ("", "")
        self.period_start = 0.0
        self.period_end = 0.0  # 0: the period never ends

    def period_left_s(self, now: float) -> float:
        """Budgets only: seconds from `now` (epoch s) until the period ends (0: it never does)."""
        return max(0.001, self.period_end - now) if self.period_end else 0.0

    def describe(self) -> str:
        return f"{self.label} {KIND_NAMES[self.kind]}"


def scope_rules(
    kind_name: str, scope_id: str, label: str, limits: RateLimitConfig | KeyPolicy | Scope, closed: bool
) -> list[Rule]:
    """The rate rules of one scope from its rpm / tpm / max_parallel (unset or 0: none)."""
    rules = []
    if limits.rpm:
        rules.append(Rule(RPM, label, f"rpm:{kind_name}:{scope_id}", limits.rpm, closed))
    if limits.tpm:
        rules.append(Rule(TPM, label, f"tpm:{kind_name}:{scope_id}", limits.tpm, closed))
    if limits.max_parallel:
        rules.append(Rule(PARALLEL, label, f"par:{kind_name}:{scope_id}", limits.max_parallel, closed))
    return rules


class RuleBook:
    """The configured rate rules, compiled once, and per-key rules cached per policy snapshot."""

    __slots__ = ("_by_key", "closed", "deployments", "global_rules", "models")

    def __init__(self, config: LimitsConfig):
        self.closed = config.on_redis_error == "closed"

        def compiled(kind_name: str, name: str, label: str, rule: RateLimitConfig) -> list[Rule]:
            closed = self.closed if rule.on_redis_error is None else rule.on_redis_error == "closed"
            return scope_rules(kind_name, name, label, rule, closed)

        g = config.global_
        self.global_rules = compiled("global", "all", "global", g) if g is not None else []
        self.models = {n: compiled("model", n, f"model '{n}'", r) for n, r in config.models.items()}
        self.deployments = {
            n: compiled("deployment", n, f"deployment '{n}'", r) for n, r in config.deployments.items()
        }
        # Policies are replaced (never changed) when identity reloads, so a policy object's rules are
        # computed once; the cache is cleared when it grows past its bound.
        self._by_key: dict[KeyPolicy, list[Rule]] = {}

    @property
    def configured(self) -> bool:
        return bool(self.global_rules or self.models or self.deployments)

    def key_rules(self, key: KeyPolicy) -> list[Rule]:
        rules = self._by_key.get(key)
        if rules is None:
            rules = scope_rules("key", key.id, f"key '{key.name}'", key, self.closed)
            for scope in (key.user, key.team, key.org):
                if scope is not None:
                    label = f"{scope.kind} '{scope.name}'"
                    rules += scope_rules(scope.kind, scope.id, label, scope, self.closed)
            if len(self._by_key) >= _CACHE_LIMIT:
                self._by_key.clear()
            self._by_key[key] = rules
        return rules

    def rules_for(self, key: KeyPolicy | None, model: str, deployment_id: str) -> list[Rule]:
        """Every rate rule of a routed request (empty when none applies)."""
        rules = self.key_rules(key) if key is not None else []
        if self.models or self.deployments or self.global_rules:
            rules = [
                *rules,
                *self.models.get(model, ()),
                *self.deployments.get(deployment_id, ()),
                *self.global_rules,
            ]
        return rules
