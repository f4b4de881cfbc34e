"""The limits stage (admission) and the recorder that settles each admitted request when it ends.

Admission counts the request against every rule at once, all or nothing: requests, tokens (the
prompt counted with the deployment's tokenizer plus max_tokens, an estimate), a concurrency slot,
and a budget reservation (the estimated cost). The settle, for every finished request (errors and
client disconnects included), frees the slot and corrects tokens and spend to the real figures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from gatecore.config.schema import GatecoreConfig
from gatecore.errors import BudgetExceeded, GatewayError, LimitsUnavailable, RateLimited
from gatecore.limits.alerts import post_alert
from gatecore.limits.budgets import MICROS, BudgetBook, to_micros
from gatecore.limits.grant import Grant, Outcome
from gatecore.limits.local import LocalLimiter, open_table
from gatecore.limits.rules import BUDGET, PARALLEL, TPM, Rule, RuleBook
from gatecore.pricing.book import PriceBook
from gatecore.relay.usage import count_input_tokens
from gatecore.request import EMBEDDINGS, RequestContext

if TYPE_CHECKING:
    from gatecore.limits.redis_limiter import RedisLimiter

log = logging.getLogger("gatecore.limits")
SpendSource = Callable[[str, str, float, float | None], Awaitable[float]]
_UNITS = ("requests per minute", "tokens per minute", "requests in flight")


class Limits:
    """The `limits` and `budgets` of one config: the stage (`__call__`) and its recorder (`record`)."""

    __slots__ = (
        "_alerts",
        "_seeded",
        "budgets",
        "default_max_tokens",
        "local",
        "prices",
        "rate",
        "redis",
        "spent_since",
        "webhook",
    )

    def __init__(self, config: GatecoreConfig, prices: PriceBook):
        self.rate = RuleBook(config.limits)
        self.budgets = BudgetBook(config.budgets)
        self.default_max_tokens = config.limits.default_max_tokens
        self.prices = prices
        self.local = LocalLimiter(open_table(config.limits.table_slots))
        self.redis: RedisLimiter | None = None
        if config.redis is not None:
            # Imported only when configured: redis-py loads opentelemetry's metrics SDK when it is
            # installed, which a gateway without Redis (or with tracing off) has no use for.
            from gatecore.limits.redis_limiter import RedisLimiter

            self.redis = RedisLimiter(config.redis)
        self.webhook = config.budgets.alert_webhook
        self._alerts: set[asyncio.Task[None]] = set()
        # What the ledger holds for a budget's scope since a time (set once the ledger can read the
        # store): the shared-memory counters start at zero with the server, the ledger does not.
        self.spent_since: SpendSource | None = None
        self._seeded: set[str] = set()

    async def __call__(self, ctx: RequestContext) -> None:
        key = ctx.key
        model = ctx.route.name if ctx.route is not None else ctx.client_model
        rules = self.rate.rules_for(key, model, ctx.deployment_id)
        budget_rules = self.budgets.rules_for(key, model)
        if budget_rules:
            rules = [*rules, *budget_rules]
        if not rules:
            return
        costs, min_tokens = self._costs(ctx, rules)
        redis = self.redis
        outcome: Outcome | None = None
        slots: list[int] = []
        if redis is not None:
            outcome = await redis.take(rules, costs, min_tokens)
            if outcome is None and any(rule.fail_closed for rule in rules):
                raise LimitsUnavailable(
                    "Rate limits cannot be checked right now (their store is unreachable)."
                )
        local = outcome is None
        if outcome is None:
            if budget_rules and self.spent_since is not None:
                await self._seed(budget_rules)
            outcome, slots = self.local.take(rules, costs, min_tokens)
        if outcome.refused >= 0:
            raise _refusal(rules[outcome.refused], outcome, costs[outcome.refused])
        ctx.limits = Grant(rules, costs, outcome, local, slots)

    async def _seed(self, rules: list[Rule]) -> None:
        """Start each budget counter of this server from the ledger's spend for its period (once per
        counter and server: the first worker to claim it reads the ledger). Without it, a restart
        would give every budget its whole period again."""
        seeded = self._seeded
        for rule in rules:
            cell = rule.cell
            if cell in seeded:
                continue
            if len(seeded) > 100_000:  # old periods' cells: forget them, claims stay in the table
                seeded.clear()
            if not self.local.claim_seed(cell):
                seeded.add(cell)
                continue
            assert self.spent_since is not None
            try:
                spent = await self.spent_since(
                    rule.scope[0], rule.scope[1], rule.period_start, rule.period_end or None
                )
            except GatewayError as exc:
                self.local.unclaim_seed(cell)  # a later request tries again
                log.warning("cannot read past spend for %s from the ledger: %s", rule.label, exc)
                continue
            self.local.add(cell, to_micros(spent))
            seeded.add(cell)

    def _costs(self, ctx: RequestContext, rules: list[Rule]) -> tuple[list[int], int]:
        """What each rule takes, and the least tokens a tpm rule may take (0: exactly its cost).

        Without the client's max_tokens the output estimate is a guess, not a bound: the request
        passes when its prompt fits and takes what is available up to the estimate (the settle
        charges what it really used)."""
        tokens = min_tokens = 0
        micros = 0
        kinds = {rule.kind for rule in rules}
        if TPM in kinds or BUDGET in kinds:
            deployment = ctx.deployment
            tokenizer = deployment.provider.tokenizer if deployment is not None else "o200k_base"
            prompt = count_input_tokens(ctx.body, tokenizer)
            output = 0 if ctx.endpoint is EMBEDDINGS else (ctx.max_tokens or self.default_max_tokens)
            tokens = prompt + output
            if ctx.max_tokens is None and ctx.endpoint is not EMBEDDINGS:
                min_tokens = prompt + 1
            if BUDGET in kinds:
                micros = to_micros(self.prices.estimate_usd(ctx, prompt, output))
        return [tokens if r.kind == TPM else micros if r.kind == BUDGET else 1 for r in rules], min_tokens

    def record(self, ctx: RequestContext, finished_ns: int) -> None:
        grant = ctx.limits
        if grant is None:
            return
        usage = ctx.usage
        tokens = usage.input_tokens + usage.output_tokens if usage is not None else 0
        micros = 0
        if any(rule.kind == BUDGET for rule in grant.rules):
            cost = ctx.cost_usd
            micros = to_micros(self.prices.cost_usd(ctx) if cost is None else cost)
        if grant.local:
            self._alert(self.local.settle(grant, tokens, micros))
        else:
            assert self.redis is not None
            self.redis.settle(grant, tokens, micros, self._alert)

    def _alert(self, crossed: list[tuple[Rule, int]]) -> None:
        for rule, spent in crossed:
            if not rule.soft:
                continue
            log.warning("budget crossed: %s, %s budget $%g", rule.label, rule.period, rule.limit / MICROS)
            if self.webhook is not None:
                task = asyncio.get_running_loop().create_task(post_alert(self.webhook, rule, spent))
                self._alerts.add(task)
                task.add_done_callback(self._alerts.discard)

    async def aclose(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
        if self._alerts:
            await asyncio.wait(list(self._alerts), timeout=5)


def _refusal(rule: Rule, outcome: Outcome, cost: int) -> RateLimited | BudgetExceeded:
    retry = outcome.retry_s
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
