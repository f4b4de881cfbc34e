"""What an admitted request holds: the rules it was counted against, what it took from each, and the
figures its response headers show."""

from __future__ import annotations

from gatecore.limits.rules import RPM, TPM, Rule


class Outcome:
    """A backend's answer to one admission: every rule passed (`refused` is -1) or the first that did
    not, with how long until the same request could pass (`retry_s`, None when it never can)."""

    __slots__ = ("refused", "remaining", "reset_ns", "retry_s")

    def __init__(self, refused: int, remaining: list[int], reset_ns: list[int], retry_s: float | None):
        self.refused = refused
        self.remaining = remaining
        self.reset_ns = reset_ns
        self.retry_s = retry_s


class Grant:
    """Set on `ctx.limits` once admitted; the settle recorder and the header builder read it."""

    __slots__ = ("costs", "local", "outcome", "rules", "slots")

    def __init__(self, rules: list[Rule], costs: list[int], outcome: Outcome, local: bool, slots: list[int]):
        self.rules = rules
        self.costs = costs  # what was taken: 1 request, estimated tokens, 1 slot, reserved micro-USD
        self.outcome = outcome
        self.local = local  # counted in this machine's table (no Redis, or Redis failed open)
        self.slots = slots  # the local table's slot of each rule (local only)

    def headers(self) -> list[tuple[str, str]]:
        """`x-ratelimit-*` for the tightest requests and tokens scopes (the fewest remaining)."""
        remaining = self.outcome.remaining
        best = [-1, -1]  # per kind: RPM, TPM
        for i, rule in enumerate(self.rules):
            kind = rule.kind
            if kind <= TPM and (best[kind] < 0 or remaining[i] < remaining[best[kind]]):
                best[kind] = i
        out: list[tuple[str, str]] = []
        for kind, i in enumerate(best):
            if i >= 0:
                names = _NAMES[kind]
                out += (
                    (names[0], self.rules[i].limit_text),
                    (names[1], str(remaining[i])),
                    (names[2], duration(self.outcome.reset_ns[i] / 1e9)),
                )
        return out


_NAMES = tuple(
    tuple(f"x-ratelimit-{part}-{suffix}" for part in ("limit", "remaining", "reset"))
    for suffix in ("requests", "tokens")
)
assert RPM == 0 and TPM == 1  # _NAMES and `best` are indexed by kind


def duration(seconds: float) -> str:
    """OpenAI's reset format: `6s`, `1m30s`, `250ms` (whole milliseconds)."""
    ms = max(0, int(seconds * 1000 + 0.5))
    if ms < 1000:
        return f"{ms}ms"
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    text = f"{secs}.{ms:03d}".rstrip("0").rstrip(".") + "s" if ms else f"{secs}s"
    return f"{minutes}m{text}" if minutes else text
