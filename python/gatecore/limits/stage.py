"""The limits stage (admission) and the recorder that settles each admitted request when it ends.

Admission counts the request against every rule at once, all or nothing: requests, tokens (the
prompt counted with the deployment's tokenizer plus max_tokens, an estimate), a concurrency slot,
and a budget reservation (the estimated cost). The settle, for every finished request (errors and
client disconnects included), frees the slot and corrects tokens and spend to the real figures.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from gatecore._core import CounterTable, RulePlan, count_prompt_tokens
from gatecore.config.schema import GatecoreConfig
from gatecore.errors import Forbidden, GatewayError, LimitsUnavailable
from gatecore.limits.alerts import post_alert
from gatecore.limits.budgets import MICROS, BudgetBook, to_micros
from gatecore.limits.grant import Grant
from gatecore.limits.local import LocalLimiter
from gatecore.limits.max_tokens import with_max_tokens
from gatecore.limits.refusal import rule_refusal
from gatecore.limits.rules import BUDGET, PARALLEL, RPM, TPM, Rule, RuleBook
from gatecore.policy.key_policy import KeyPolicy
from gatecore.pricing.book import ModelPrice, PriceBook
from gatecore.request import RequestContext
from gatecore.request.tokens import HF_PREFIX, count_input_tokens

if TYPE_CHECKING:
    from gatecore.limits.redis_limiter import RedisLimiter

log = logging.getLogger("gatecore.limits")
SpendSource = Callable[[str, str, float, float | None], Awaitable[float]]
_PLAN_CACHE_LIMIT = 50_000
# `_estimate`'s figures: prompt, tokens, micro-USD, least tokens, least micro-USD, the token price.
Figures = tuple[int, int, int, int, int, ModelPrice | None]
_NO_ESTIMATE: Figures = (0, 0, 0, 0, 0, None)  # no tpm or budget rule: nothing to estimate
# Refusals at routing that still count against the key's rpm (the caller is known).
_ROUTING_REFUSALS = frozenset(("model_not_found", "model_not_allowed"))


class Limits:
    """The `limits` and `budgets` of one config: the stage (`__call__`) and its recorder (`record`)."""

    __slots__ = (
        "_alerts",
        "_plans",
        "_refusal_plans",
        "_seeded",
        "budgets",
        "default_max_tokens",
        "hit_tokens",
        "local",
        "prices",
        "rate",
        "redis",
        "slots",
        "spent_since",
        "webhook",
    )

    def __init__(self, config: GatecoreConfig, prices: PriceBook, counters: CounterTable):
        self.rate = RuleBook(config.limits)
        self.budgets = BudgetBook(config.budgets)
        self.default_max_tokens = config.limits.default_max_tokens
        self.hit_tokens = config.cache.hits_count_tokens  # a cache hit's tokens count against tpm
        self.prices = prices
        self.local = LocalLimiter(counters)  # the server's shared table (the worker opens it)
        self.slots = config.limits.table_slots
        self.redis: RedisLimiter | None = None
        if config.redis is not None:
            # Imported only when configured: redis-py loads opentelemetry's metrics SDK when it is
            # installed, which a gateway without Redis (or with tracing off) has no use for.
            from gatecore.limits.redis_limiter import RedisLimiter

            self.redis = RedisLimiter(config.redis, self.budgets.clock)
        self.webhook = config.budgets.alert_webhook
        self._alerts: set[asyncio.Task[object]] = set()  # webhook posts and refusals counted on Redis
        # What the ledger holds for a budget's scope since a time (set once the ledger can read the
        # store): the shared-memory counters start at zero with the server, the ledger does not.
        self.spent_since: SpendSource | None = None
        self._seeded: set[str] = set()
        # Per key policy: the plan of its rpm rules alone, which refusals at routing count against.
        self._refusal_plans: dict[KeyPolicy, RulePlan] = {}
        # (key policy, model, deployment) → (the budget rules it was built with, its compiled rules):
        # policies are replaced, never changed, on an identity reload, so an entry never goes stale.
        self._plans: dict[
            tuple[KeyPolicy | None, str, str],
            tuple[list[Rule], tuple[list[Rule], RulePlan, bool, bool] | None],
        ] = {}

    def __call__(self, ctx: RequestContext) -> Awaitable[Grant] | None:
        """Admit the request and set `ctx.limits`: at once (None) when it is counted in the shared
        table with nothing to seed, else as an awaitable (Redis, a budget's first seed from the
        ledger). None too when no rule applies; raises the refusal."""
        key = ctx.key
        model = ctx.route.name if ctx.route is not None else ctx.client_model
        budget_rules = self.budgets.rules_for(key, model)
        compiled = self._compiled(key, model, ctx.deployment_id, budget_rules)
        if compiled is None:
            return None
        rules, plan, estimate, budget = compiled
        if self.redis is None and not self._to_seed(budget_rules):
            # The common case without a coroutine: the shared table is counted synchronously.
            figures = self._estimate(ctx, budget) if estimate else _NO_ESTIMATE
            self._admit_local(ctx, rules, plan, budget, figures, first=True)
            return None
        return self._admit(ctx, rules, plan, estimate, budget, budget_rules, first=True)

    def _to_seed(self, budget_rules: list[Rule]) -> bool:
        """Whether some budget rule's counter may still need its start from the ledger (`_seed`)."""
        if not budget_rules or self.spent_since is None:
            return False
        seeded = self._seeded
        return any(rule.cell not in seeded for rule in budget_rules)

    async def admit_move(self, ctx: RequestContext, model: str) -> GatewayError | None:
        """Count a request that moves to another deployment or model (a retry, a fallback, a refusal
        redirect; `ctx` already names the new deployment) against the rules of that target it has not
        been counted against yet: its deployment's and model's limits and budgets. Returns the refusal
        (the caller skips that target, as if it had answered 429), or None once admitted.

        A request counts once against each scope it reaches, however often it goes back to one."""
        key = ctx.key
        budget_rules = self.budgets.rules_for(key, model)
        held = ctx.limits
        assert held is None or isinstance(held, Grant)  # the context holds it as a view
        cells = held.cells() if held is not None else set()
        # Only the rules not counted yet are compiled (a plan of the target's whole set would claim
        # its cells for nothing).
        every = [*self.rate.rules_for(key, model, ctx.deployment_id), *budget_rules]
        rules = [rule for rule in every if rule.cell not in cells]
        if not rules:
            return None
        kinds = {rule.kind for rule in rules}
        budget = BUDGET in kinds
        try:
            plan = self._plan(rules)
            grant = await self._admit(
                ctx, rules, plan, TPM in kinds or budget, budget, [r for r in budget_rules if r in rules]
            )
        except GatewayError as refusal:
            return refusal
        grant.target = ctx.deployment_id
        if held is None:
            ctx.limits = grant
        else:
            held.moves = (*held.moves, grant)
            if grant.capped is not None:
                held.capped = grant.capped
        return None

    async def _admit(
        self,
        ctx: RequestContext,
        rules: list[Rule],
        plan: RulePlan,
        estimate: bool,
        budget: bool,
        budget_rules: list[Rule],
        first: bool = False,
    ) -> Grant:
        """Count the request against `rules` (all or nothing) and return what it holds (`first`: the
        admission of the limits stage, also set on `ctx.limits`); raises the refusal of the first rule
        that does not admit it."""
        figures = self._estimate(ctx, budget) if estimate else _NO_ESTIMATE
        prompt, tokens, micros, min_tokens, min_micros, price = figures
        redis = self.redis
        if redis is not None:
            costs = [tokens if r.kind == TPM else micros if r.kind == BUDGET else 1 for r in rules]
            outcome = await redis.take(rules, costs, min_tokens, min_micros)
            if outcome is not None:
                if outcome.refused >= 0:
                    i = outcome.refused
                    raise rule_refusal(rules[i], outcome.retry_s, costs[i])
                grant = Grant(rules, budget, outcome=outcome, costs=costs)
                if first:
                    ctx.limits = grant
                if budget:
                    hard = (c for r, c in zip(rules, costs, strict=True) if r.kind == BUDGET and not r.soft)
                    grant.capped = self._cap_output(ctx, prompt, next(hard, None), price)
                return grant
            if any(rule.fail_closed for rule in rules):
                raise LimitsUnavailable(
                    "Rate limits cannot be checked right now (their store is unreachable)."
                )
        if budget_rules and self.spent_since is not None:
            await self._seed(budget_rules)
        return self._admit_local(ctx, rules, plan, budget, figures, first)

    def _admit_local(
        self,
        ctx: RequestContext,
        rules: list[Rule],
        plan: RulePlan,
        budget: bool,
        figures: Figures,
        first: bool,
    ) -> Grant:
        """Count the request in the shared table (`figures`: `_estimate`'s); raises the refusal."""
        prompt, tokens, micros, min_tokens, min_micros, price = figures
        admission = plan.admit(time.monotonic_ns(), tokens, micros, min_tokens, min_micros)
        refused = admission.refused
        if refused >= 0:
            rule = rules[refused]
            kind = rule.kind
            retry_ns = admission.retry_ns
            if kind == PARALLEL:
                retry: float | None = 1.0
            elif kind == BUDGET:
                retry = rule.period_left_s(self.budgets.clock()) or None
            else:
                retry = None if retry_ns is None else retry_ns / 1e9
            raise rule_refusal(rule, retry, tokens if kind == TPM else 1)
        grant = Grant(rules, budget, plan=plan, admission=admission)
        if first:
            ctx.limits = grant
        if budget:
            grant.capped = self._cap_output(ctx, prompt, admission.reserved_micros, price)
        return grant

    def _plan(self, rules: list[Rule]) -> RulePlan:
        try:
            return self.local.plan(rules)
        except ValueError:  # the shared table has no free cell for a new counter
            log.error("the limits' shared table is full: raise limits.table_slots (now %d)", self.slots)
            raise LimitsUnavailable(
                "Rate limits cannot be checked right now (their table is full).", code="limits_table_full"
            ) from None

    def _compiled(
        self, key: KeyPolicy | None, model: str, deployment_id: str, budget_rules: list[Rule]
    ) -> tuple[list[Rule], RulePlan, bool, bool] | None:
        """A request's rules and their plan, compiled once per key, model and deployment (and again
        when a budget period turns: its rules are new objects then). None when no rule applies."""
        cache_key = (key, model, deployment_id)
        entry = self._plans.get(cache_key)
        if entry is None or entry[0] is not budget_rules:
            rules = self.rate.rules_for(key, model, deployment_id)
            if budget_rules:
                rules = [*rules, *budget_rules]
            kinds = {rule.kind for rule in rules}
            compiled = (
                (rules, self._plan(rules), TPM in kinds or BUDGET in kinds, BUDGET in kinds)
                if rules
                else None
            )
            if len(self._plans) >= _PLAN_CACHE_LIMIT:
                self._plans.clear()
            entry = self._plans[cache_key] = (budget_rules, compiled)
        return entry[1]

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
            if not self.local.claim_seed(rule):
                seeded.add(cell)
                continue
            assert self.spent_since is not None
            try:
                spent = await self.spent_since(
                    rule.scope[0], rule.scope[1], rule.period_start, rule.period_end or None
                )
            except GatewayError as exc:
                self.local.unclaim_seed(rule)  # a later request tries again
                log.warning("cannot read past spend for %s from the ledger: %s", rule.label, exc)
                continue
            self.local.add(rule, to_micros(spent))
            seeded.add(cell)

    def _estimate(self, ctx: RequestContext, budget: bool) -> Figures:
        """The prompt's tokens, the estimated tokens (prompt and output, every choice), the estimated
        cost (micro-USD, when a budget applies), the least tokens a tpm rule may take (0: exactly the
        estimate), the least a hard budget may reserve (0: exactly the estimate) and the deployment's
        token price (when a budget applies and no GPU meter prices it; resolved once per request).

        Without the client's max_tokens the output estimate is `limits.default_max_tokens` per
        choice: tpm rules take what is available up to it (the settle charges what was used), and a
        hard budget's reservation is made a bound by capping the output sent upstream to it
        (`_cap_output`)."""
        deployment = ctx.deployment
        tokenizer = deployment.tokenizer if deployment is not None else "o200k_base"
        counted = ctx.prompt_count  # the routing stage's count, for a long request
        if counted is not None and counted[0] == tokenizer:
            prompt = counted[1]
        else:
            prompt = (
                count_input_tokens(ctx.body, tokenizer)
                if tokenizer.startswith(HF_PREFIX)
                else count_prompt_tokens(ctx.body, tokenizer)  # without the wrapper's frame
            )
        embeddings = not ctx.endpoint.generates  # embeddings, rerank, audio, images: no output tokens
        output = 0 if embeddings else (ctx.max_tokens or self.default_max_tokens) * ctx.choices
        min_tokens = prompt + 1 if ctx.max_tokens is None and not embeddings else 0
        micros = min_micros = 0
        price = None
        if budget:
            meter = self.prices.meters.get(deployment)
            price = self.prices.price_of(deployment, ctx.upstream_model)
            if price is None and meter is None:
                # Priced $0, a budget would never move: refused rather than served for free.
                raise Forbidden(
                    f"A budget applies, but no price is known for the model '{ctx.upstream_model[:200]}' "
                    "(set the deployment's pricing).",
                    code="model_not_priced",
                )
            if meter is not None:  # GPU-time pricing: its recent average (PriceBook.estimate_usd)
                price = None
                micros = to_micros(meter.average_usd)
            else:
                assert price is not None
                micros = to_micros(price.tokens_usd(prompt, output))
                if output and ctx.max_tokens is None:
                    # No limit of the client's: take what every hard budget has left, down to the
                    # prompt and one token a choice, and cap the output to what was reserved. A
                    # client's own max_tokens is reserved whole or refused, never cut short.
                    least = to_micros(price.tokens_usd(prompt, ctx.choices))
                    min_micros = max(1, least) if least < micros else 0
        return prompt, prompt + output, micros, min_tokens, min_micros, price

    def _cap_output(
        self, ctx: RequestContext, prompt: int, reserved: int | None, price: ModelPrice | None
    ) -> int | None:
        """Cap the output sent upstream to what a hard budget's reservation pays for, so a request
        never costs more than it reserved (its `max_tokens` written into the body; None when no cap
        was needed: no hard budget, no token price (`price`: `_estimate`'s), or the client's own
        limit fits)."""
        if reserved is None or price is None or price.output_per_1m <= 0 or not ctx.endpoint.generates:
            return None
        # micro-USD: a price per 1M tokens is micro-USD per token.
        left = reserved - to_micros(price.tokens_usd(prompt, 0))
        affordable = max(1, int(left // (price.output_per_1m * ctx.choices)))
        wanted = ctx.max_tokens
        if wanted is not None and wanted <= affordable:
            return None
        cap = min(affordable, wanted or self.default_max_tokens)
        ctx.body = with_max_tokens(ctx.body, cap)
        ctx.max_tokens = cap
        return cap

    def record(self, ctx: RequestContext, finished_ns: int) -> None:
        grant = ctx.limits
        if grant is None:
            if ctx.key is not None and ctx.error_code in _ROUTING_REFUSALS:
                self._count_refusal(ctx.key)
            return
        assert isinstance(grant, Grant)  # the context holds it as a view
        usage = ctx.usage
        tokens = usage.input_tokens + usage.output_tokens if usage is not None else 0
        if not self.hit_tokens and ctx.cache is not None and ctx.cache.state == "hit":
            tokens = 0  # a cache hit is a request (rpm) but used no upstream tokens (tpm)
        micros = 0
        if grant.budget or any(move.budget for move in grant.moves):
            cost = ctx.cost_usd
            micros = to_micros(self.prices.cost_usd(ctx) if cost is None else cost)
        self._settle(grant, tokens, micros)
        for move in grant.moves:
            # A target the request left (its attempt failed) took a request and a slot, no tokens or spend.
            final = move.target == ctx.deployment_id
            self._settle(move, tokens if final else 0, micros if final else 0)

    def _settle(self, grant: Grant, tokens: int, micros: int) -> None:
        plan = grant.plan
        if plan is not None:
            assert grant.admission is not None
            crossed = plan.settle(grant.admission, time.monotonic_ns(), tokens, micros)
            if crossed:
                self._alert([(grant.rules[i], spent) for i, spent in crossed])
        else:
            assert self.redis is not None
            self.redis.settle(grant, tokens, micros, self._alert)

    def _count_refusal(self, key: KeyPolicy) -> None:
        """A known caller refused at routing (unknown model, model not allowed) still spends a
        request of its key's (and its tenants') rpm: a flood of refusals is not free. Counted after
        the answer, as a request that takes no tokens; nothing is refused here."""
        rules = [rule for rule in self.rate.key_rules(key) if rule.kind == RPM]
        if not rules:
            return
        redis = self.redis
        if redis is not None:
            task = asyncio.get_running_loop().create_task(redis.take(rules, [1] * len(rules)))
            self._alerts.add(task)  # kept until done, like the alerts (aclose waits for them)
            task.add_done_callback(self._alerts.discard)
            return
        plan = self._refusal_plans.get(key)
        if plan is None:
            if len(self._refusal_plans) >= _PLAN_CACHE_LIMIT:
                self._refusal_plans.clear()
            plan = self._refusal_plans[key] = self.local.plan(rules)
        plan.admit(time.monotonic_ns(), 0, 0, 0)

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
