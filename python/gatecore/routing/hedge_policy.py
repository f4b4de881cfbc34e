"""A model's hedge delay (`routing.hedge`): when a second attempt of a slow first one starts
(pipeline/hedge.py runs the hedge)."""

from __future__ import annotations

from collections import deque

from gatecore.config.routing import HedgeConfig

SAMPLES = 200  # head times kept per model for the percentile


class HedgePolicy:
    """A model's hedge delay: fixed, or the 95th percentile of its recent times to the answer head."""

    __slots__ = ("_delay", "_samples", "_since", "config")

    def __init__(self, config: HedgeConfig):
        self.config = config
        self._samples: deque[float] = deque(maxlen=SAMPLES)
        self._delay = config.delay_s
        self._since = 0

    def delay(self) -> float:
        return self._delay

    def observe(self, seconds: float) -> None:
        """One attempt's time to its answer head (the percentile is recomputed every 10 samples)."""
        if not self.config.p95:
            return
        samples = self._samples
        samples.append(seconds)
        self._since += 1
        count = len(samples)
        if count >= self.config.min_samples and (self._since >= 10 or count == self.config.min_samples):
            self._since = 0
            self._delay = sorted(samples)[min(count - 1, int(count * 0.95))]
