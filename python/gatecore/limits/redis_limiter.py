"""Limits shared by every replica through Redis: one round trip per admission, an atomic Lua script.

The admission script checks every rule of the request against Redis's own clock (`TIME`, so replicas
need no synchronised clocks) and writes only when all pass; the settle script (sent off the request
path, after the response) corrects tokens and spend and frees concurrency slots. Scripts run by
EVALSHA, loaded once and reloaded on NOSCRIPT; the calls of one loop tick (many requests' admissions
and settles) go in one pipeline (redis_batch.py).

Unreachable Redis (or one slower than `timeout_s`): `take` returns None and the stage applies each
rule's fail mode; for `retry_after_s` after a failure requests do not try Redis at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from gatecore.config.limits import RedisConfig
from gatecore.limits.grant import Grant, Outcome
from gatecore.limits.redis_batch import ScriptBatch
from gatecore.limits.rules import BUDGET, PARALLEL, TPM, Rule
from gatecore.store.redis_client import RedisClient, key_prefix, redis_client

log = logging.getLogger("gatecore.limits")

# ARGV per rule: op, limit, cost, ttl_ms (op `u`: the least tokens instead of a ttl), then one more:
# the least micro-units a hard budget (`b`) may reserve, 0 for exactly its cost. A hard budget admits
# only a reservation that fits under its limit (spend + reservation <= limit); with a least, it takes
# what it has left, down to the least, and every hard budget of the request then holds the same
# amount, the smallest (as `RulePlan.admit` does). Returns, per rule, the units left, µs until full
# again and the units taken. Times in microseconds. Numbers go back to strings with %.0f: Lua 5.1
# would print large ones in exponent form.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local new, ttl, out, found = {}, {}, {}, {}
local least_micros = tonumber(ARGV[4*#KEYS+1] or '0') or 0
local budget_cap = nil
for i = 1, #KEYS do
  local op, limit, cost = ARGV[4*i-3], tonumber(ARGV[4*i-2]), tonumber(ARGV[4*i-1])
  local v = tonumber(redis.call('GET', KEYS[i]) or '0')
  local left, reset = 0, 0
  ttl[i] = tonumber(ARGV[4*i])
  if op == 'g' or op == 'u' then
    local interval = math.max(1, math.floor(60000000 / limit))
    local period = interval * limit
    local base = math.max(v, now)
    local least = cost
    if op == 'u' then least = ttl[i] end
    local available = math.floor((period - (base - now)) / interval)
    if least > limit then return {0, i, -1, 0} end
    if available < least then return {0, i, (base - now) - (period - least * interval), available} end
    cost = math.max(least, math.min(cost, available))
    local tat = base + interval * cost
    new[i] = tat
    left, reset = math.floor((period - (tat - now)) / interval), tat - now
    ttl[i] = math.floor(reset / 1000) + 1000
  elseif op == 'c' then
    if v >= limit then return {0, i, 1000000, 0} end
    new[i] = v + 1
    left = limit - v - 1
  elseif op == 'b' then
    local least = cost
    if least_micros > 0 then
      least = math.min(least_micros, cost)
      if budget_cap then cost = math.min(cost, budget_cap) end
      cost = math.min(cost, limit - v)
    end
    if v >= limit or limit - v < least then return {0, i, 0, math.max(0, limit - v)} end
    if least_micros > 0 then budget_cap = cost end
    found[i] = v
    new[i] = v + cost
    left = math.max(0, limit - new[i])
  else
    new[i] = v + cost
    left = math.max(0, limit - new[i])
  end
  out[3*i-2], out[3*i-1], out[3*i] = left, reset, cost
end
if budget_cap then
  for i = 1, #KEYS do
    if found[i] then
      new[i] = found[i] + budget_cap
      out[3*i-2], out[3*i] = math.max(0, tonumber(ARGV[4*i-2]) - new[i]), budget_cap
    end
  end
end
for i = 1, #KEYS do
  local value = string.format('%.0f', new[i])
  if ttl[i] > 0 then redis.call('SET', KEYS[i], value, 'PX', ttl[i]) else redis.call('SET', KEYS[i], value) end
end
return {1, 0, 0, 0, unpack(out)}
"""

# ARGV per rule: op, limit, delta, ttl_ms. Returns the spend of budget rules whose limit this settle
# crossed first in the period (0 for the others).
SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i = 1, #KEYS do
  local op, limit, delta, ttl = ARGV[4*i-3], tonumber(ARGV[4*i-2]), tonumber(ARGV[4*i-1]), tonumber(ARGV[4*i])
  local v = tonumber(redis.call('GET', KEYS[i]) or '0')
  out[i] = 0
  if op == 'g' and delta ~= 0 then
    local interval = math.max(1, math.floor(60000000 / limit))
    local tat = v - (-delta) * interval
    if delta > 0 then tat = math.max(v, now) + delta * interval end
    if tat > now then
      redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
    else
      redis.call('DEL', KEYS[i])
    end
  elseif op == 'c' then
    if v > 0 then redis.call('DECR', KEYS[i]) end
  elseif op == 'b' then
    v = math.max(0, v + delta)
    if ttl > 0 then
      redis.call('SET', KEYS[i], string.format('%.0f', v), 'PX', ttl)
    else
      redis.call('SET', KEYS[i], string.format('%.0f', v))
    end
    if v >= limit and redis.call('SET', KEYS[i] .. ':alerted', '1', 'NX', 'PX', math.max(ttl, 1000)) then
      out[i] = v
    end
  end
end
return out
"""

_PARALLEL_TTL_MS = 600_000  # a slot a crashed replica never released expires with its idle cell
_DAY_MS = 86_400_000


class RedisLimiter:
    """Admission and settle against one Redis server."""

    __slots__ = (
        "_calls",
        "_down_until",
        "_pending",
        "_settle",
        "_take",
        "client",
        "clock",
        "prefix",
        "retry_after_s",
    )

    def __init__(self, config: RedisConfig, clock: Callable[[], float]):
        self.client: RedisClient = redis_client(config.url, config.timeout_s)
        self.prefix = key_prefix(config.url, config.key_prefix)
        self.retry_after_s = config.retry_after_s
        self.clock = clock  # the budget periods' clock (epoch s)
        self._take = self.client.register_script(TAKE)
        self._settle = self.client.register_script(SETTLE)
        self._calls = ScriptBatch(self.client)  # one pipeline per loop tick for all requests
        self._down_until = 0.0
        self._pending: set[asyncio.Task[None]] = set()

    def _args(self, rules: list[Rule], amounts: list[int], settle: bool) -> tuple[list[str], list[Any]]:
        keys = [self.prefix + rule.cell for rule in rules]
        argv: list[Any] = []
        now = self.clock()
        for rule, amount in zip(rules, amounts, strict=True):
            kind = rule.kind
            if kind <= TPM:
                argv += ["g", rule.limit, amount, 0]
            elif kind == PARALLEL:
                argv += ["c", rule.limit, amount, _PARALLEL_TTL_MS]
            else:
                left_s = rule.period_left_s(now)
                ttl = int(left_s * 1000) + _DAY_MS if left_s else 0
                argv += ["s" if rule.soft and not settle else "b", rule.limit, amount, ttl]
        return keys, argv

    async def take(
        self, rules: list[Rule], costs: list[int], min_tokens: int = 0, min_micros: int = 0
    ) -> Outcome | None:
        """The admission outcome, or None when Redis cannot answer (the fail mode decides). `costs`
        is updated to what was taken: tpm rules take between `min_tokens` and their cost, hard
        budgets between `min_micros` and theirs (all the same amount, what the tightest has left)
        when `min_micros` > 0, else exactly their cost, and only when it fits under the limit."""
        if self._down_until and time.monotonic() < self._down_until:
            return None
        keys, argv = self._args(rules, costs, settle=False)
        if min_tokens:
            for i, rule in enumerate(rules):
                if rule.kind == TPM:
                    argv[4 * i], argv[4 * i + 3] = "u", min_tokens
        if min_micros:
            argv.append(min_micros)
        try:
            answer = await self._calls.call(self._take, keys, argv)
        except (TimeoutError, RedisError, OSError) as exc:
            self._failed(exc)
            return None
        if self._down_until:
            self._down_until = 0.0
            log.warning("redis is reachable again: limits are shared again")
        if answer[0] != 1:
            refused, retry_us, left = int(answer[1]) - 1, int(answer[2]), int(answer[3])
            rule = rules[refused]
            if rule.kind == BUDGET:
                retry_s = rule.period_left_s(self.clock()) or None
            else:
                retry_s = None if retry_us < 0 else retry_us / 1e6
            return Outcome(refused, [left], [0], retry_s)
        values = [int(v) for v in answer[4:]]
        costs[:] = values[2::3]
        return Outcome(-1, values[0::3], [us * 1000 for us in values[1::3]], None)

    def _failed(self, exc: BaseException) -> None:
        if not self._down_until:
            log.error(
                "redis is unreachable (%s): limits follow their on_redis_error mode", type(exc).__name__
            )
        self._down_until = time.monotonic() + self.retry_after_s

    def settle(
        self, grant: Grant, tokens: int, micros: int, crossed: Callable[[list[tuple[Rule, int]]], None]
    ) -> None:
        """Send the settle in the background (after the response; never waits on the request path)."""
        deltas = []
        for rule, cost in zip(grant.rules, grant.costs, strict=True):
            kind = rule.kind
            deltas.append(tokens - cost if kind == TPM else micros - cost if kind == BUDGET else 0)
        wanted = [i for i, r in enumerate(grant.rules) if r.kind == TPM or r.kind >= PARALLEL]
        if not wanted:
            return
        rules = [grant.rules[i] for i in wanted]
        task = asyncio.get_running_loop().create_task(self._send(rules, [deltas[i] for i in wanted], crossed))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(
        self, rules: list[Rule], deltas: list[int], crossed: Callable[[list[tuple[Rule, int]]], None]
    ) -> None:
        keys, argv = self._args(rules, deltas, settle=True)
        try:
            answer = await self._calls.call(self._settle, keys, argv)
        except (TimeoutError, RedisError, OSError) as exc:
            # Lost corrections expire with their cells (tokens within a minute, slots when idle).
            self._failed(exc)
            return
        crossed([(rule, int(v)) for rule, v in zip(rules, answer, strict=True) if int(v) > 0])

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=2)
        await self._calls.aclose()
        await self.client.aclose()
