"""Gaps between the writes of one relayed stream, summarised in O(1) memory for the ledger.

The streaming relay reads the clock once per write to the client and hands the gap since the previous
write to `ChunkGaps.add`: a sum (the mean), the maximum and a sparse log-linear histogram (the count,
and p50/p99 as the dispersion figures). The histogram has 8 buckets per power of two above 16 µs
(exact microseconds below), so a percentile read from a bucket's middle is within ±6.25 % of the true
gap; a stream's gaps fall into a handful of buckets, so the dict stays a few entries long whatever
the stream's length.

A gap is measured per write to the client, not per token: one upstream read that completes several
events is one write (and one gap), as the client sees it.
"""

from __future__ import annotations

_LINEAR = 16  # below this many µs, a bucket per µs
_SUB_BITS = 3  # 2**3 buckets per power of two above
_SUB_MASK = (1 << _SUB_BITS) - 1


def _bucket(gap_ns: int) -> int:
    """The histogram bucket of a gap (µs as ns >> 10: a shift, 2.4 % wide of a true µs, for speed)."""
    us = gap_ns >> 10
    if us < _LINEAR:
        return us
    bits = us.bit_length()
    return (bits << _SUB_BITS) + ((us >> (bits - _SUB_BITS - 1)) & _SUB_MASK)


def _bucket_middle_ns(bucket: int) -> float:
    """The middle of a bucket's range, in ns (the inverse of `_bucket`)."""
    if bucket < _LINEAR:
        return (bucket + 0.5) * 1024
    bits, sub = bucket >> _SUB_BITS, bucket & _SUB_MASK
    shift = bits - _SUB_BITS - 1
    low = ((1 << _SUB_BITS) + sub) << shift
    return (low + (1 << shift) / 2) * 1024


class ChunkGaps:
    """One stream's gaps between writes (ns): their sum, maximum and histogram (the count is the
    histogram's total)."""

    __slots__ = ("buckets", "max", "sum")

    def __init__(self) -> None:
        self.sum = 0
        self.max = 0
        self.buckets: dict[int, int] = {}

    def add(self, gap_ns: int) -> None:
        """One more gap (called once per write after the first). This runs per chunk, so `_bucket`
        is inlined with its constants as literals (globals cost a lookup each)."""
        self.sum += gap_ns
        if gap_ns > self.max:
            self.max = gap_ns
        bucket = gap_ns >> 10
        if bucket >= 16:  # _LINEAR
            bits = bucket.bit_length()
            bucket = (bits << 3) + ((bucket >> (bits - 4)) & 7)  # _SUB_BITS = 3
        buckets = self.buckets
        buckets[bucket] = buckets.get(bucket, 0) + 1

    @property
    def count(self) -> int:
        return sum(self.buckets.values())

    def mean_ms(self) -> float | None:
        count = self.count
        return round(self.sum / count / 1e6, 3) if count else None

    def max_ms(self) -> float | None:
        return round(self.max / 1e6, 3) if self.buckets else None

    def percentile_ms(self, fraction: float) -> float | None:
        """The gap at `fraction` (0.5, 0.99) by nearest rank, read from its bucket's middle (never
        above the largest gap seen)."""
        return self.percentiles_ms((fraction,))[0]

    def percentiles_ms(self, fractions: tuple[float, ...]) -> list[float | None]:
        """`percentile_ms` of each of `fractions` (ascending), in one pass over the buckets."""
        count = self.count
        if not count:
            return [None] * len(fractions)
        # ceil(fraction * count), robust to float noise (0.99 * 100 is 99.00000000000001)
        ranks = [max(1, -(-int(f * count * 1000) // 1000)) for f in fractions]
        found: list[float | None] = []
        seen = 0
        buckets = self.buckets
        for bucket in sorted(buckets):
            seen += buckets[bucket]
            while len(found) < len(ranks) and seen >= ranks[len(found)]:
                found.append(round(min(_bucket_middle_ns(bucket), self.max) / 1e6, 3))
            if len(found) == len(ranks):
                break
        return found

    def row_fields(self) -> tuple[int, float | None, float | None, float | None, float | None]:
        """The ledger's columns: count, mean, p50, p99 and max (ms). `percentiles_ms` for the two
        ranks the ledger keeps, in integer arithmetic: ceil(n/2) and ceil(0.99 n) = n - n // 100."""
        buckets = self.buckets
        if not buckets:
            return 0, None, None, None, None
        count = sum(buckets.values())
        half, top = (count + 1) // 2, count - count // 100
        seen, p50, p99 = 0, -1, -1
        for bucket in sorted(buckets):
            seen += buckets[bucket]
            if p50 < 0 and seen >= half:
                p50 = bucket
            if seen >= top:
                p99 = bucket
                break
        peak = self.max
        return (
            count,
            round(self.sum / count / 1e6, 3),
            round(min(_bucket_middle_ns(p50), peak) / 1e6, 3),
            round(min(_bucket_middle_ns(p99), peak) / 1e6, 3),
            round(peak / 1e6, 3),
        )
