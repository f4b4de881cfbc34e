"""Budget periods: which period `now` falls in, calendar-aligned in the configured time zone.

Test hook: when the environment variable GATECORE_TEST_CLOCK_FILE names a file, the budget clock
reads epoch seconds from it instead of the system clock (tests move time across midnight or a month
end without sleeping). It is read at every period change check, only when set; never set it in
production.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

TEST_CLOCK_ENV = "GATECORE_TEST_CLOCK_FILE"


def budget_clock() -> Callable[[], float]:
    """Epoch seconds: the system clock, or the test hook's file."""
    path = os.environ.get(TEST_CLOCK_ENV)
    if not path:
        return time.time

    def from_file() -> float:
        with open(path) as f:
            return float(f.read().strip())

    return from_file


class Period:
    """One budget period: a stable id (part of the spend's Redis key), its start and end (epoch s;
    end 0: never), and its tag in the shared-memory table (a 16-bit serial number, one more than the
    previous period's: the budget's cell is the same every period, see rust/src/budget_cells.rs)."""

    __slots__ = ("end", "id", "start", "tag")

    def __init__(self, id: str, start: float, end: float, seq: int = 0):
        self.id = id
        self.start = start
        self.end = end
        self.tag = seq & 0xFFFF


class PeriodClock:
    """The current period of one kind (`daily`, `weekly`, `monthly`, `rolling`, `total`), recomputed
    only when the previous one has ended."""

    __slots__ = ("_current", "kind", "rolling_s", "tz")

    def __init__(self, kind: str, tz: ZoneInfo, rolling_s: float):
        self.kind = kind
        self.tz = tz
        self.rolling_s = rolling_s
        self._current: Period | None = None

    def at(self, now: float) -> Period:
        current = self._current
        if current is not None and current.start <= now and (current.end == 0 or now < current.end):
            return current
        current = self._current = period_at(self.kind, now, self.tz, self.rolling_s)
        return current


def period_at(kind: str, now: float, tz: ZoneInfo, rolling_s: float) -> Period:
    """The period of `kind` holding `now`."""
    if kind == "total":
        return Period("total", 0.0, 0.0)
    if kind == "rolling":
        # Consecutive windows of rolling_s seconds counted from the epoch.
        index = int(now // rolling_s)
        return Period(f"r{int(rolling_s)}-{index}", index * rolling_s, (index + 1) * rolling_s, index)
    local = datetime.fromtimestamp(now, tz)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "daily":
        start, end = day, _next_day(day, 1)
        name = f"d{start:%Y-%m-%d}"
        seq = start.toordinal()
    elif kind == "weekly":
        start = _next_day(day, -day.weekday())
        end = _next_day(start, 7)
        name = f"w{start:%Y-%m-%d}"
        seq = start.toordinal() // 7  # weeks start on the same weekday: consecutive numbers
    else:  # monthly
        start = day.replace(day=1)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
        name = f"m{start:%Y-%m}"
        seq = start.year * 12 + start.month
    return Period(name, start.timestamp(), end.timestamp(), seq)


def _next_day(day: datetime, days: int) -> datetime:
    # Calendar days, not 24 h: across a DST change the local midnight is kept.
    moved = (day.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=day.tzinfo)
    return moved
