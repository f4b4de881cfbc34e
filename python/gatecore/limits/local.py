"""Limits counted in this machine's shared-memory table (`gatecore._core.CounterTable`).

The workers of one `gatecore serve` map the same file (its path comes from the environment, set by
`serve` before the workers start), so a limit holds for the server. Every operation is one atomic
update of one cell: nothing here waits or blocks.
"""

from __future__ import annotations

import os
import time

from gatecore._core import CounterTable
from gatecore.limits.grant import Grant, Outcome
from gatecore.limits.rules import MINUTE_NS, PARALLEL, TPM, Rule

COUNTERS_ENV = "GATECORE_COUNTERS_PATH"
_NEVER = 2**64 - 1


def open_table(slots: int) -> CounterTable:
    """The server's shared table (or a private one when not started by `gatecore serve`)."""
    return CounterTable(os.environ.get(COUNTERS_ENV) or None, slots)


class LocalLimiter:
    """Admits and settles requests against a CounterTable."""

    __slots__ = ("_slots", "table")

    def __init__(self, table: CounterTable):
        self.table = table
        self._slots: dict[str, int] = {}

    def slot(self, cell: str) -> int:
        slot = self._slots.get(cell)
        if slot is None:
            slot = self._slots[cell] = self.table.slot(cell)
        return slot

    def take(self, rules: list[Rule], costs: list[int], min_tokens: int = 0) -> tuple[Outcome, list[int]]:
        """All rules or none: a refused rule gives back what the ones before it took. With
        `min_tokens`, tpm rules take what is available between it and their cost; `costs` is updated
        to what was taken."""
        table = self.table
        now = time.monotonic_ns()
        remaining: list[int] = []
        resets: list[int] = []
        slots: list[int] = []
        for i, rule in enumerate(rules):
            slot = self.slot(rule.cell)
            kind = rule.kind
            if kind == TPM and min_tokens:
                ok, left, reset_ns, retry_ns, costs[i] = table.gcra_take_upto(
                    slot, now, MINUTE_NS, rule.limit, min_tokens, costs[i]
                )
                retry_s = None if retry_ns == _NEVER else retry_ns / 1e9
            elif kind <= TPM:
                ok, left, reset_ns, retry_ns = table.gcra_take(slot, now, MINUTE_NS, rule.limit, costs[i])
                retry_s = None if retry_ns == _NEVER else retry_ns / 1e9
            elif kind == PARALLEL:
                ok, used = table.acquire(slot, rule.limit)
                left, reset_ns, retry_s = rule.limit - used, 0, 1.0
            else:
                if rule.soft:
                    ok, value = True, table.adjust(slot, costs[i])
                else:
                    ok, value = table.reserve(slot, rule.limit, costs[i])
                left, reset_ns = max(0, rule.limit - value), 0
                retry_s = rule.period_left_s or None
            if not ok:
                self.give_back(rules[:i], costs, slots)
                return Outcome(i, remaining, resets, retry_s), slots
            remaining.append(left)
            resets.append(reset_ns)
            slots.append(slot)
        return Outcome(-1, remaining, resets, None), slots

    def claim_seed(self, cell: str) -> bool:
        """Whether this worker is the first of the server to seed `cell` (then it must, or `unclaim`)."""
        ok, _ = self.table.reserve(self.slot("seed:" + cell), 1, 1)
        return bool(ok)

    def unclaim_seed(self, cell: str) -> None:
        self.table.adjust(self.slot("seed:" + cell), -1)

    def add(self, cell: str, amount: int) -> None:
        self.table.adjust(self.slot(cell), amount)

    def give_back(self, rules: list[Rule], costs: list[int], slots: list[int]) -> None:
        table = self.table
        for rule, cost, slot in zip(rules, costs, slots, strict=False):
            if rule.kind <= TPM:
                table.gcra_give(slot, MINUTE_NS, rule.limit, cost)
            elif rule.kind == PARALLEL:
                table.release(slot)
            else:
                table.adjust(slot, -cost)

    def settle(self, grant: Grant, tokens: int, micros: int) -> list[tuple[Rule, int]]:
        """Correct tokens and spend to the real figures and free concurrency slots. Returns the
        budget rules whose limit this request's spend crossed first (each once per period), with the
        spend after it."""
        table = self.table
        crossed: list[tuple[Rule, int]] = []
        for rule, cost, slot in zip(grant.rules, grant.costs, grant.slots, strict=True):
            kind = rule.kind
            if kind == TPM:
                if tokens < cost:
                    table.gcra_give(slot, MINUTE_NS, rule.limit, cost - tokens)
                elif tokens > cost:
                    table.gcra_charge(slot, time.monotonic_ns(), MINUTE_NS, rule.limit, tokens - cost)
            elif kind == PARALLEL:
                table.release(slot)
            elif kind > PARALLEL:
                value = table.adjust(slot, micros - cost)
                if value >= rule.limit and table.reserve(self.slot("alert:" + rule.cell), 1, 1)[0]:
                    crossed.append((rule, value))
        return crossed
