"""Budget rules of a request: USD per key, user, team, org and model over their period."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from gatecore.auth.policy import KeyPolicy
from gatecore.config.limits import BudgetsConfig
from gatecore.limits.periods import PeriodClock, budget_clock
from gatecore.limits.rules import BUDGET, Rule

MICROS = 1_000_000  # spend is counted in micro-dollars (integer cells)


def to_micros(usd: float) -> int:
    return max(0, round(usd * MICROS))


class BudgetBook:
    """Compiled `budgets` config: the period clocks and the per-model budgets."""

    __slots__ = ("clock", "closed", "models", "period", "soft")

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

    def rules_for(self, key: KeyPolicy | None, model: str) -> list[Rule]:
        """The budget rules of a request, each for the current period (empty when none applies)."""
        rules: list[Rule] = []
        model_budget = self.models.get(model)
        if key is None and model_budget is None:
            return rules
        now = 0.0
        if key is not None:
            scopes = [("key", key.id, f"key '{key.name}'", key.budget_usd)]
            scopes += [
                (s.kind, s.id, f"{s.kind} '{s.name}'", s.budget_usd)
                for s in (key.user, key.team, key.org)
                if s is not None
            ]
            for kind, scope_id, label, usd in scopes:
                if usd is not None:
                    now = now or self.clock()
                    rules.append(self._rule(kind, scope_id, label, usd, self.period, self.soft, now))
        if model_budget is not None:
            usd, clock, soft = model_budget
            now = now or self.clock()
            rules.append(self._rule("model", model, f"model '{model}'", usd, clock, soft, now))
        return rules

    def _rule(
        self, kind: str, scope_id: str, label: str, usd: float, clock: PeriodClock, soft: bool, now: float
    ) -> Rule:
        period = clock.at(now)
        rule = Rule(BUDGET, label, f"usd:{kind}:{scope_id}:{period.id}", to_micros(usd), self.closed)
        rule.period = clock.kind
        rule.period_left_s = max(0.001, period.end - now) if period.end else 0.0
        rule.soft = soft
        rule.scope = (kind, scope_id)
        rule.period_start = period.start
        rule.period_end = period.end
        return rule
