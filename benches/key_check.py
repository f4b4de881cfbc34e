"""In-process microbenchmark: µs per key check (HMAC of the secret + table probe + expiry checks) with
10,000 virtual keys in the table, and the time to compile that table (what a reload costs).

    PYTHONPATH=python .venv/bin/python benches/key_check.py [N]
"""

from __future__ import annotations

import asyncio
import sys
import time
import timeit

from gatecore.auth.stage import AuthStage
from gatecore.config.schema import AuthConfig
from gatecore.identity.records import KEY_COLUMNS, ApiKey, row_values
from gatecore.identity.snapshot import compile_keys

KEYS = 10_000


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    stage = AuthStage(AuthConfig(master_key="sk-bench-master-0123456789"))
    secrets = [f"gk-bench-{i:06d}-abcdefghijklmnopqrstuvwxyz0123456789" for i in range(KEYS)]
    rows = [
        row_values(
            ApiKey(
                id=f"key_{i}",
                name=f"k{i}",
                prefix=s[:9],
                hash=stage.hasher.hexdigest(s),
                models=["a", "b"],
                expires_at=time.time() + 3600 if i % 2 else None,
            )
        )
        for i, s in enumerate(secrets)
    ]
    assert len(rows[0]) == len(KEY_COLUMNS.split(","))
    started = time.perf_counter()
    table = asyncio.run(compile_keys([], rows))
    compile_ms = (time.perf_counter() - started) * 1000
    stage.install(table, [])
    for label, secret in (("no expiry", secrets[4000]), ("with expiry", secrets[4001])):
        micros = min(timeit.repeat(lambda s=secret: stage.lookup(s), number=n, repeat=3)) / n * 1e6
        print(f"key check ({label}): {micros:.2f} µs")
    print(f"compile {KEYS} keys: {compile_ms:.1f} ms")


if __name__ == "__main__":
    main()
