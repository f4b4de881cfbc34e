"""The bounds of the store lookups a key miss may make: the negative cache and the token bucket."""

from __future__ import annotations

from gatecore.identity.sync import MissCache, TokenBucket


def test_miss_cache_remembers_for_its_ttl_and_holds_at_most_its_size() -> None:
    cache = MissCache(size=3, ttl_s=10.0)
    cache.add(b"a", 0.0)
    assert cache.holds(b"a", 9.9) and not cache.holds(b"a", 10.0)
    assert not cache.holds(b"a", 1.0)  # an expired entry is gone
    for name in (b"a", b"b", b"c", b"d"):
        cache.add(name, 1.0)
    assert len(cache) == 3
    assert not cache.holds(b"a", 2.0)  # the oldest went first
    assert all(cache.holds(name, 2.0) for name in (b"b", b"c", b"d"))


def test_token_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=10.0, burst=5)
    now = bucket.at
    assert [bucket.take(now) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.take(now + 0.15) and not bucket.take(now + 0.15)
    assert sum(bucket.take(now + 100.0) for _ in range(50)) == 5  # never more than the burst
