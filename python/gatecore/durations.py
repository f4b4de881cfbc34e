"""Durations as the ledger and the access log write them (ground floor: imports nothing of gatecore)."""

from __future__ import annotations


def ms(ns: int) -> float:
    """Nanoseconds as milliseconds to the microsecond (half up): integer arithmetic, a fifth of
    `round(ns / 1e6, 3)`'s cost, which was a sixth of a row's."""
    return (ns + 500) // 1000 / 1000
