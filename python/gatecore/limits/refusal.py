"""The 429 a limits rule answers with: its message and `retry-after`."""

from __future__ import annotations

from gatecore.errors import BudgetExceeded, RateLimited
from gatecore.limits.budgets import MICROS
from gatecore.limits.rules import BUDGET, PARALLEL, Rule

_UNITS = ("requests per minute", "tokens per minute", "requests in flight")


def rule_refusal(rule: Rule, retry: float | None, cost: int) -> RateLimited | BudgetExceeded:
    """The 429 of `rule` (`retry`: seconds until the same request could pass, None: never; `cost`:
    the tokens it needs, for a tpm rule's message)."""
    headers = [] if retry is None else [("retry-after", str(max(1, int(retry + 0.999))))]
    if rule.kind == BUDGET:
        error: RateLimited | BudgetExceeded = BudgetExceeded(
            f"Budget exceeded: {rule.label} has spent its {rule.period} budget of ${rule.limit / MICROS:g}.",
            headers=headers,
        )
        return error
    what = f"{rule.label} allows {rule.limit} {_UNITS[rule.kind]} ({rule.describe()})"
    if retry is None:
        message = f"Rate limit exceeded: this request needs {cost} tokens but {what}."
    elif rule.kind == PARALLEL:
        message = f"Rate limit exceeded: {what}. Retry when one ends."
    else:
        message = f"Rate limit exceeded: {what}. Retry after {retry:.1f} s."
    return RateLimited(message, headers=headers)
