"""Budget rules of a request: USD per key, user, team, org and model over their period."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from gatecore.config.limits import BudgetsConfig
from gatecore.limits.periods import PeriodClock, budget_clock
from gatecore.limits.rules import BUDGET, Rule
from gatecore.policy.key_policy import KeyPolicy

MICROS = 1_000_000  # spend is counted in micro-dollars (integer cells)
_NONE: list[Rule] = []  # the same (never changed) object every time: the limits stage caches on it


def to_micros(usd: float) -> int:
    """Whole micro-dollars (half up; never below 0). Twice a request: `int()` is a third of
    `max(0, round())`'s cost."""
    micros = int(usd * MICROS + 0.5)
    return micros if micros > 0 else 0


class BudgetBook:
    """Compiled `budgets` config: the period clocks and the per-model budgets."""

    __slots__ = ("_cache", "clock", "closed", "models", "period", "soft")

    def __init__(self, config: BudgetsConfig):
        tz = ZoneInfo(config.timezone)
        self.clock = budget_clock()
        self.period = PeriodClock(config.period, tz, config.rolling_s)
        self.soft = config.mode == "soft"
        self.closed = config.on_redis_error == "closed"
        self.models = {
            name: (
                model.usd,
                PeriodClock(model.period or config.period, tz, config.rolling_s),
                (model.mode or config.mode) == "soft",
            )
            for name, model in config.models.items()
        }
        # (key policy, model) → (its rules, when the first of their periods ends): the rules of a key
        # are built once per period, not per request. Policies are replaced, never changed, on an
        # identity reload, so a stale entry is only a missed hit; the cache is bounded.
        self._cache: dict[tuple[KeyPolicy | None, str], tuple[list[Rule], float]] = {}

    def rules_for(self, key: KeyPolicy | None, model: str) -> list[Rule]:
        """The budget rules of a request, each for the current period (empty when none applies)."""
        if key is None and model not in self.models:
            return _NONE
        now = self.clock()
        cached = self._cache.get((key, model))
        if cached is not None and now < cached[1]:
            return cached[0]
        rules = self._build(key, model, now)
        ends = [rule.period_end for rule in rules if rule.period_end]
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[(key, model)] = (rules, min(ends) if ends else float("inf"))
        return rules

    def _build(self, key: KeyPolicy | None, model: str, now: float) -> list[Rule]:
        rules: list[Rule] = []
        model_budget = self.models.get(model)
        if key is None and model_budget is None:
            return rules
        if key is not None:
            scopes = [("key", key.id, f"key '{key.name}'", key.budget_usd)]
            scopes += [
                (s.kind, s.id, f"{s.kind} '{s.name}'", s.budget_usd)
                for s in (key.user, key.team, key.org)
                if s is not None
            ]
            for kind, scope_id, label, usd in scopes:
                if usd is not None:
                    rules.append(self._rule(kind, scope_id, label, usd, self.period, self.soft, now))
        if model_budget is not None:
            usd, clock, soft = model_budget
            rules.append(self._rule("model", model, f"model '{model}'", usd, clock, soft, now))
        return rules

    def _rule(
        self, kind: str, scope_id: str, label: str, usd: float, clock: PeriodClock, soft: bool, now: float
    ) -> Rule:
        period = clock.at(now)
        rule = Rule(BUDGET, label, f"usd:{kind}:{scope_id}:{period.id}", to_micros(usd), self.closed)
        rule.period = clock.kind
        rule.slot_name = f"usd:{kind}:{scope_id}:{clock.kind}"
        rule.tag = period.tag
        rule.soft = soft
        rule.scope = (kind, scope_id)
        rule.period_start = period.start
        rule.period_end = period.end
        return rule
