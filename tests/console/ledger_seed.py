"""Ledger rows written straight into a gateway's SQLite file (the console's paging tests and the
page-load figure need 100k-1M rows; sending that many requests would take minutes)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

MODELS = ("m1", "m2")


def seed_ledger(
    db: Path, rows: int, *, team: tuple[str, str] | None = None, span_s: float = 6 * 86_400
) -> None:
    """Insert `rows` requests spread over the last `span_s` seconds (ids `seed:<n>`), in batches."""
    now = time.time()
    team_id, team_name = team if team is not None else (None, None)
    with sqlite3.connect(db, timeout=30) as conn:
        batch = []
        for n in range(rows):
            at = now - span_s * (n + 1) / rows
            day = time.strftime("%Y-%m-%d", time.gmtime(at))
            model = MODELS[n % len(MODELS)]
            batch.append(
                (
                    f"seed:{n:08d}",
                    f"req-seed-{n:08d}",
                    at,
                    day,
                    "chat",
                    "key_seed",
                    "seeded",
                    team_id,
                    team_name,
                    model,
                    f"echo/{model}",
                    10 + n % 50,
                    20 + n % 70,
                    n * 1e-6 % 0.01,
                    200 if n % 97 else 500,
                    5.0 + n % 300,
                    None if n % 3 else 2.0 + n % 40,
                )
            )
            if len(batch) == 10_000 or n == rows - 1:
                conn.executemany(
                    "INSERT INTO usage_ledger (id, request_id, at, day, endpoint, key_id, key_name, team_id, "
                    "team_name, model, deployment, input_tokens, output_tokens, cached_tokens, "
                    "reasoning_tokens, usage_source, cost_usd, gpu_seconds, status, latency_ms, ttft_ms, "
                    "streamed, cache_hit, client_gone) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, "
                    "'upstream', ?, 0, ?, ?, ?, 0, 0, 0)",
                    batch,
                )
                batch = []
