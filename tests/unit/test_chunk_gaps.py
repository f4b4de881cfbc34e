"""The streaming relay's per-request gap summary: exact count, mean and maximum, and percentiles read
from its log-linear histogram within the stated ±6.25 % of the exact nearest-rank value."""

from __future__ import annotations

import math
import random

import pytest

from gatecore.request.chunk_gaps import ChunkGaps


def exact(gaps: list[int], fraction: float) -> float:
    ordered = sorted(gaps)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1] / 1e6


@pytest.mark.parametrize("seed", range(5))
def test_summary_matches_the_gaps(seed: int) -> None:
    rng = random.Random(seed)
    # Streams as they look: a mode around a few ms, a tail of stalls, some sub-16 µs bursts.
    gaps = [int(rng.lognormvariate(15.4, 0.4)) for _ in range(2000)]
    gaps += [int(rng.uniform(50e6, 400e6)) for _ in range(30)] + [rng.randrange(0, 15_000) for _ in range(40)]
    rng.shuffle(gaps)
    summary = ChunkGaps()
    for gap in gaps:
        summary.add(gap)
    assert summary.count == len(gaps)
    assert summary.mean_ms() == round(sum(gaps) / len(gaps) / 1e6, 3)
    assert summary.max_ms() == round(max(gaps) / 1e6, 3)
    for fraction in (0.5, 0.9, 0.99):
        assert summary.percentile_ms(fraction) == pytest.approx(exact(gaps, fraction), rel=0.0625, abs=0.0011)
    assert len(summary.buckets) < 120  # sparse: bounded by the range of gaps, not their number
    assert summary.row_fields() == (
        summary.count,
        summary.mean_ms(),
        summary.percentile_ms(0.5),
        summary.percentile_ms(0.99),
        summary.max_ms(),
    )


def test_small_and_empty_summaries() -> None:
    empty = ChunkGaps()
    assert (empty.count, empty.mean_ms(), empty.max_ms(), empty.percentile_ms(0.5)) == (0, None, None, None)
    assert empty.row_fields() == (0, None, None, None, None)  # a stream written in one piece
    one = ChunkGaps()
    one.add(5_000_000)
    assert one.count == 1 and one.mean_ms() == 5.0
    # A percentile never exceeds the largest gap, even when the bucket's middle would.
    median, p99 = one.percentile_ms(0.5), one.percentile_ms(0.99)
    assert median is not None and median == p99 and median <= 5.0
    assert median == pytest.approx(5.0, rel=0.0625)
    tiny = ChunkGaps()
    for gap in (0, 1_000, 3_000, 14_000):  # below 16 µs buckets are 1.024 µs wide
        tiny.add(gap)
    assert tiny.percentile_ms(0.5) == pytest.approx(0.001, abs=0.0011)
    assert tiny.percentile_ms(0.99) == 0.014
