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
        out: list[tuple[str, str]] = []
        for kind, suffix in ((RPM, "requests"), (TPM, "tokens")):
            best = -1
            for i, rule in enumerate(self.rules):
                if rule.kind == kind and (
                    best < 0 or self.outcome.remaining[i] < self.outcome.remaining[best]
                ):
                    best = i
            if best >= 0:
                out += [
                    (f"x-ratelimit-limit-{suffix}", str(self.rules[best].limit)),
                    (f"x-ratelimit-remaining-{suffix}", str(self.outcome.remaining[best])),
                    (f"x-ratelimit-reset-{suffix}", duration(self.outcome.reset_ns[best] / 1e9)),
                ]
        return out


def duration(seconds: float) -> str:
    """OpenAI's reset format: `6s`, `1m30s`, `250ms`."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text
