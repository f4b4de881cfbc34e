"""Microbenchmark: what the run export's timings cost on the request path.

- per write of a stream: the streaming relay's bookkeeping after each `send_bytes`, before (one
  attribute test for TTFT) and after this change (one clock read, the gap added to `ChunkGaps`, the
  body-capture test), with gaps of a few ms as a real stream has (`ChunkGaps.add` alone too);
- per request: `RowMaker.row` for a streamed request of 20 writes, now with the gap summary's mean,
  p50, p99 and max computed for its row.

Run: `PYTHONPATH=python .venv/bin/python benches/chunk_gaps.py [N] [REPEATS]`.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable

from gatecore.ledger.row import RowMaker
from gatecore.request import CHAT, RequestContext, Usage
from gatecore.request.chunk_gaps import ChunkGaps


def best_ns(run: Callable[[int], None], n: int, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        run(n)
        timings.append((time.perf_counter_ns() - started) / n)
    return min(timings)


def old_writes(n: int) -> None:
    """Before: TTFT only (the clock is read once per stream)."""
    ctx = RequestContext(CHAT, "bench", b"{}", time.perf_counter_ns())
    clock = time.perf_counter_ns
    for _ in range(n):
        if not ctx.first_byte_ns:
            ctx.first_byte_ns = clock()


def new_writes(n: int) -> None:
    """After: the loop body of relay/streaming.py after `send_bytes`, each gap lengthened by 5 ms so
    the histogram takes the path a real stream's gap takes (this loop's own gaps are ~100 ns)."""
    ctx = RequestContext(CHAT, "bench", b"{}", time.perf_counter_ns())
    gaps = ctx.chunk_gaps = ChunkGaps()
    capture = ctx.body_capture
    clock = time.perf_counter_ns
    last = 0
    for _ in range(n):
        now = clock()
        if last:
            gaps.add(now - last + 5_000_000)
        else:
            ctx.first_byte_ns = now
        last = now
        if capture is not None:
            capture.add(b"")


STREAM_GAPS = [int(random.Random(1).lognormvariate(15.4, 0.3)) for _ in range(4096)]  # ~5 ms


def adds(n: int) -> None:
    gaps = ChunkGaps()
    values = STREAM_GAPS
    for i in range(n):
        gaps.add(values[i & 4095])


def rows(n: int, writes: int) -> None:
    maker = RowMaker("bench")
    ctx = RequestContext(CHAT, "bench", b"{}", time.perf_counter_ns())
    ctx.client_model, ctx.status, ctx.stream = "m", 200, True
    ctx.usage = Usage(120, 80, source="upstream")
    ctx.first_byte_ns = ctx.started + 20_000_000
    ctx.overhead_ns = 250_000
    if writes:
        ctx.chunk_gaps = ChunkGaps()
        for gap in STREAM_GAPS[: writes - 1]:
            ctx.chunk_gaps.add(gap)
    for i in range(n):
        maker.row(ctx, ctx.started + 120_000_000 + i, 0.0004)


def main(n: int, repeats: int) -> None:
    old, new = best_ns(old_writes, n, repeats), best_ns(new_writes, n, repeats)
    print(f"per write, before: {old:6.0f} ns  after: {new:6.0f} ns  added: {new - old:6.0f} ns")
    print(f"ChunkGaps.add alone, ~5 ms gaps: {best_ns(adds, n, repeats):6.0f} ns")
    plain = best_ns(lambda k: rows(k, 0), n // 10, repeats)
    stream = best_ns(lambda k: rows(k, 20), n // 10, repeats)
    print(f"ledger row, no stream: {plain / 1000:5.2f} µs  20-write stream: {stream / 1000:5.2f} µs")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(args[0] if args else 1_000_000, args[1] if len(args) > 1 else 5)
