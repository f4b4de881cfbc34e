"""What the guards of one request did, counted: (guard, entity type or check, action) → times.
Never the matched text: the ledger, the access log and the metrics read only these counts."""

from __future__ import annotations


class Tally:
    """The counts of one request's guardrail actions, the guard that flagged it and where a flag
    reroutes it."""

    __slots__ = ("counts", "flagged", "reroute")

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}
        self.flagged: str | None = None
        # The model a flagging guard sends the request to instead (the first such guard's).
        self.reroute: str | None = None

    def add(self, guard: str, kind: str, action: str, times: int = 1) -> None:
        key = (guard, kind, action)
        self.counts[key] = self.counts.get(key, 0) + times
