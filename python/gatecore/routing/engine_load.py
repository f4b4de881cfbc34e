"""The load a local inference engine reports about itself (vLLM, SGLang, TGI `/metrics`)."""

from __future__ import annotations

import time


class EngineLoad:
    """One replica's latest figures: requests running and waiting, KV-cache use (0..1)."""

    __slots__ = ("at", "inflight_at", "kv_cache", "running", "stale_after", "waiting")

    def __init__(self, stale_after: float):
        self.stale_after = stale_after
        self.at = 0.0  # monotonic time of the last good read; 0: never
        self.running = 0.0
        self.waiting = 0.0
        self.kv_cache = 0.0
        self.inflight_at = 0  # this worker's in-flight requests to the replica when it was read

    def fresh(self) -> bool:
        return self.at > 0 and time.monotonic() - self.at < self.stale_after

    def score(self, inflight: int) -> float:
        """Lower is less loaded: queued work first, then running requests, then KV-cache use. What this
        worker sent since the read counts as waiting (the engine has not reported it yet)."""
        waiting = self.waiting + max(0, inflight - self.inflight_at)
        return waiting * 1000.0 + self.running + self.kv_cache
