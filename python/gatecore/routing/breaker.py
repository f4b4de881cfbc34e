"""A circuit breaker per deployment, per worker process.

Closed: requests flow. `failures` consecutive failures, or an error rate of at least `error_rate` over
the last `window_s` seconds (with at least `min_requests` outcomes), open it: the deployment is skipped
until `cooldown_s` has passed. Then it is half-open: one request per cooldown goes through as a probe;
a success closes it, a failure opens it for another cooldown.

The request path pays one counter and one attribute test per success (`ok += 1`, `if failing`); the
window is kept only on failures: a mark (time, successes so far, failures so far) per window/8 that saw
a failure. The error rate is measured from the newest mark at least a window old, else from the oldest
mark kept, so successes since a long quiet spell all count as recent (the rate is underestimated, never
overestimated: the breaker errs on staying closed).
"""

from __future__ import annotations

import time
from collections import deque

from gatecore.config.routing import BreakerConfig

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class Breaker:
    """The health of one deployment as this worker has seen it."""

    __slots__ = (
        "_marks",
        "config",
        "failed",
        "failing",
        "failures",
        "ok",
        "opened",
        "reopen_at",
        "state",
    )

    def __init__(self, config: BreakerConfig):
        self.config = config
        self.state = CLOSED
        self.ok = 0  # successes, ever
        self.failed = 0  # failures, ever
        self.failures = 0  # consecutive failures
        # Anything but a clean closed breaker: a success must then call `succeeded`.
        self.failing = False
        self.reopen_at = 0.0  # monotonic time the cooldown (or an upstream's Retry-After) ends
        self.opened = 0  # how many times it opened, for the admin view
        self._marks: deque[tuple[float, int, int]] = deque()

    def available(self, now: float) -> bool:
        """Whether a request may go to the deployment now. An open breaker whose cooldown has passed
        turns half-open and lets this request through as the probe; the next probe waits one more
        cooldown unless a success closes it first."""
        if now < self.reopen_at:
            return False
        if self.state is not CLOSED:
            self.state = HALF_OPEN
            self.reopen_at = now + self.config.cooldown_s
        return True

    def succeeded(self) -> None:
        """A success after failures (the caller counted it in `ok` already)."""
        self.failures = 0
        self.reopen_at = 0.0
        self.state = CLOSED
        self.failing = False

    def failure(self, now: float | None = None) -> None:
        """One failed attempt (5xx, 429, timeout, connection error)."""
        now = time.monotonic() if now is None else now
        self.failed += 1
        self.failures += 1
        self.failing = True
        config = self.config
        if not config.enabled:
            return
        if self.state is HALF_OPEN:
            self._open(now)
            return
        if self.state is OPEN:
            return
        marks = self._marks
        if not marks or now - marks[-1][0] >= config.window_s / 8:
            marks.append((now, self.ok, self.failed - 1))
        while len(marks) > 1 and marks[1][0] <= now - config.window_s:
            marks.popleft()
        if self.failures >= config.failures or self._rate_exceeded(now):
            self._open(now)

    def hold(self, seconds: float, now: float | None = None) -> None:
        """Skip the deployment for `seconds` (an upstream's Retry-After) without opening the breaker."""
        if not self.config.enabled:
            return
        now = time.monotonic() if now is None else now
        self.reopen_at = max(self.reopen_at, now + seconds)
        self.failing = True

    def retry_in(self, now: float) -> float:
        """Seconds until the deployment may be tried again (0 when it may be now)."""
        return max(0.0, self.reopen_at - now)

    def _rate_exceeded(self, now: float) -> bool:
        _, ok_then, failed_then = self._marks[0]
        failed = self.failed - failed_then
        total = failed + self.ok - ok_then
        return total >= self.config.min_requests and failed >= self.config.error_rate * total

    def _open(self, now: float) -> None:
        self.state = OPEN
        self.opened += 1
        self.reopen_at = now + self.config.cooldown_s
        self._marks.clear()
