"""What an admitted request holds: the rules it was counted against, what it took from each, and the
figures its response headers show."""

from __future__ import annotations

from collections.abc import Sequence

from gatecore._core import Admission, RulePlan
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
    """Set on `ctx.limits` once admitted; the settle recorder and the header builder read it.

    Counted locally, it holds the request's `RulePlan` and its `Admission` (what each rule took);
    counted on Redis, the `Outcome` and what each rule took (`costs`)."""

    __slots__ = ("admission", "budget", "capped", "costs", "moves", "outcome", "plan", "rules", "target")

    def __init__(
        self,
        rules: list[Rule],
        budget: bool,
        *,
        plan: RulePlan | None = None,
        admission: Admission | None = None,
        outcome: Outcome | None = None,
        costs: list[int] | None = None,
    ):
        self.rules = rules
        self.budget = budget  # some rule is a budget (the settle needs the request's cost)
        self.plan = plan
        self.admission = admission
        self.outcome = outcome
        # Redis: 1 request, estimated tokens, 1 slot, reserved micro-USD (a shared empty tuple, not
        # a list per request, when counted locally).
        self.costs: Sequence[int] = costs if costs is not None else ()
        # The max_tokens a hard budget capped the request's output to (None: not capped).
        self.capped: int | None = None
        # What the request took from the rules of the targets it moved to (retries, fallbacks,
        # redirects: Limits.admit_move), and the deployment this grant was taken for ("": the first).
        self.moves: tuple[Grant, ...] = ()  # rarely any: replaced, not appended to
        self.target = ""

    def cells(self) -> set[str]:
        """The cells of every rule this request is counted against."""
        cells = {rule.cell for rule in self.rules}
        for move in self.moves:
            cells.update(rule.cell for rule in move.rules)
        return cells

    def headers(self) -> list[tuple[str, str]]:
        """`x-ratelimit-*` for the tightest requests and tokens scopes (the fewest remaining), and
        `x-gatecore-max-tokens-capped` when a hard budget capped the output."""
        capped = self.capped
        if self.plan is not None:
            assert self.admission is not None
            headers = self.plan.headers(self.admission)  # a new list: extended in place
            if capped is not None:
                headers.append(("x-gatecore-max-tokens-capped", str(capped)))
            return headers
        assert self.outcome is not None
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
        if capped is not None:
            out.append(("x-gatecore-max-tokens-capped", str(capped)))
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
