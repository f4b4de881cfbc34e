"""Limits counted in this machine's shared-memory table (`gatecore._core.CounterTable`).

The workers of one `gatecore serve` map the same file (its path comes from the environment, set by
`serve` before the workers start), so a limit holds for the server. Every operation is an atomic
update of a cell: nothing here waits or blocks. A request's admission and settle are one call each
on its `RulePlan` (the loop over its rules runs in Rust).
"""

from __future__ import annotations

import os

from gatecore._core import CounterTable, RulePlan
from gatecore.limits.rules import BUDGET, Rule

COUNTERS_ENV = "GATECORE_COUNTERS_PATH"


def open_table(slots: int) -> CounterTable:
    """The server's shared table (or a private one when not started by `gatecore serve`)."""
    return CounterTable(os.environ.get(COUNTERS_ENV) or None, slots)


class LocalLimiter:
    """The server's CounterTable: its named cells and the rule plans that count requests in it."""

    __slots__ = ("_slots", "table")

    def __init__(self, table: CounterTable):
        self.table = table
        self._slots: dict[str, int] = {}

    def slot(self, cell: str) -> int:
        slot = self._slots.get(cell)
        if slot is None:
            slot = self._slots[cell] = self.table.slot(cell)
        return slot

    def plan(self, rules: list[Rule]) -> RulePlan:
        """The compiled form of a request's rules: one `admit` and one `settle` call each."""
        return RulePlan(
            self.table,
            [
                (
                    self.slot(r.slot_name),
                    r.kind,
                    r.limit,
                    r.soft,
                    self.slot("alert:" + r.slot_name) if r.kind == BUDGET else 0,
                    r.tag,
                )
                for r in rules
            ],
        )

    def claim_seed(self, rule: Rule) -> bool:
        """Whether this worker is the first of the server to seed budget `rule`'s cell for its period
        (then it must, or `unclaim_seed`)."""
        ok, _ = self.table.reserve(self.slot("seed:" + rule.slot_name), 1, 1, rule.tag)
        return bool(ok)

    def unclaim_seed(self, rule: Rule) -> None:
        self.table.adjust(self.slot("seed:" + rule.slot_name), -1, rule.tag)

    def add(self, rule: Rule, amount: int) -> None:
        """Add `amount` to budget `rule`'s spend for its period."""
        self.table.adjust(self.slot(rule.slot_name), amount, rule.tag)
