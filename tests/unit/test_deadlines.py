"""DeadlineSweeper: waits expire after their due time, never before, and discarded ones never."""

from __future__ import annotations

import asyncio

from gatecore.upstream.deadlines import DeadlineSweeper


class _Wait:
    def __init__(self, due: float):
        self.due = due
        self.expired_at: float | None = None

    def expire(self) -> None:
        self.expired_at = asyncio.get_running_loop().time()


def test_sweeper_expires_due_waits_only() -> None:
    async def scenario() -> None:
        sweeper = DeadlineSweeper(interval=0.01)
        now = sweeper.now()
        soon, later, dropped = _Wait(now + 0.03), _Wait(now + 10.0), _Wait(now + 0.03)
        for wait in (soon, later, dropped):
            sweeper.add(wait)
        sweeper.discard(dropped)
        await asyncio.sleep(0.1)
        assert soon.expired_at is not None and soon.expired_at >= soon.due
        assert later.expired_at is None
        assert dropped.expired_at is None
        sweeper.discard(later)
        await asyncio.sleep(0.03)
        # Nothing waits any more: the sweep stops rescheduling itself.
        assert sweeper._handle is None
        sweeper.close()

    asyncio.run(scenario())
