"""Remaining-quota awareness (`models[].routing.quota`): the providers' own rate-limit heads, read
from every answer of a deployment, keep it out of routing while its quota is used up.

OpenAI (and Azure, Mistral, Groq and most OpenAI-compatible services) send
`x-ratelimit-remaining-requests` / `-tokens` with `x-ratelimit-reset-requests` / `-tokens` as
durations (`1s`, `6m0s`, `20ms`); Anthropic sends `anthropic-ratelimit-requests-remaining` /
`-tokens-remaining` with `…-reset` as RFC 3339 times. When the remaining requests or tokens fall
below the model's thresholds, the deployment is held until that quota's reset (bounded), so requests
go to the rest of the pool instead of collecting 429s. Per worker, like the breakers: each worker
reads the heads of the answers it got, which all report the one account's quota.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from typing import Protocol

from gatecore.config.routing import QuotaConfig
from gatecore.upstream.response import UpstreamResponse


class QuotaHeld(Protocol):
    """What a quota hold changes of a deployment (routing/deployment.py)."""

    quota_until: float

    def hold(self) -> None:
        """Recompute when the deployment may be tried again."""
        ...


# remaining requests, remaining tokens, reset of requests, reset of tokens
OPENAI_HEADS = (
    b"x-ratelimit-remaining-requests",
    b"x-ratelimit-remaining-tokens",
    b"x-ratelimit-reset-requests",
    b"x-ratelimit-reset-tokens",
)
ANTHROPIC_HEADS = (
    b"anthropic-ratelimit-requests-remaining",
    b"anthropic-ratelimit-tokens-remaining",
    b"anthropic-ratelimit-requests-reset",
    b"anthropic-ratelimit-tokens-reset",
)
MAX_HOLD_S = 60.0  # a far-off (or clock-skewed) reset must not take a deployment out for good
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)")
_EPOCH_AFTER = 1e9  # a bare number this large is a Unix time, not seconds from now


def heads_for(kind: str) -> tuple[bytes, bytes, bytes, bytes]:
    """The rate-limit header names a provider of `kind` answers with."""
    return ANTHROPIC_HEADS if kind == "anthropic" else OPENAI_HEADS


def reset_seconds(value: bytes | None, now_wall: float) -> float | None:
    """Seconds until a quota resets, from a reset header: a duration (`6m0s`, `20ms`, `1.5s`), a bare
    number of seconds or a Unix time, or an RFC 3339 time; None when absent or unreadable."""
    if value is None:
        return None
    text = value.decode("latin-1").strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            return None
        return max(0.0, number - now_wall if number > _EPOCH_AFTER else number)
    parts = _DURATION.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
        return sum(float(n) * scale[u] for n, u in parts)
    try:
        return max(0.0, datetime.fromisoformat(text).timestamp() - now_wall)
    except ValueError:
        return None


def _count(value: bytes | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


class QuotaState:
    """One deployment's last reported remaining quota, and the hold it put on the deployment."""

    __slots__ = ("at", "config", "heads", "remaining_requests", "remaining_tokens")

    def __init__(self, config: QuotaConfig, heads: tuple[bytes, bytes, bytes, bytes]):
        self.config = config
        self.heads = heads
        self.remaining_requests: int | None = None
        self.remaining_tokens: int | None = None
        self.at = 0.0  # monotonic time of the last answer that reported a quota

    def observe(self, deployment: QuotaHeld, response: UpstreamResponse) -> None:
        """Read an answer's rate-limit heads; hold the deployment when its quota is used up."""
        heads = self.heads
        requests = _count(response.header(heads[0]))
        tokens = _count(response.header(heads[1]))
        if requests is None and tokens is None:
            return
        now = time.monotonic()
        self.at = now
        self.remaining_requests = requests
        self.remaining_tokens = tokens
        config = self.config
        wait = 0.0
        wall = time.time()
        if requests is not None and requests < config.min_requests:
            wait = _reset(response.header(heads[2]), wall, config.default_reset_s)
        if tokens is not None and tokens < config.min_tokens:
            wait = max(wait, _reset(response.header(heads[3]), wall, config.default_reset_s))
        if wait > 0:
            deployment.quota_until = max(deployment.quota_until, now + min(wait, MAX_HOLD_S))
            deployment.hold()


def _reset(value: bytes | None, wall: float, default: float) -> float:
    seconds = reset_seconds(value, wall)
    return default if seconds is None else seconds
