"""PII scan throughput in-process (issue 20): `_core.PiiScanner.scan` over texts of several sizes,
with no PII (the common case: one RegexSet pass) and dense with it (every pattern runs, every
candidate is validated), plus the whole input guard's rewrite of a 1-2 KB chat body (decode, scan
every text, redact, re-encode).

    PYTHONPATH=python python benches/pii_scan.py
"""

from __future__ import annotations

import random
import time

import orjson

from gatecore._core import PiiScanner
from gatecore.config.guardrails import GuardrailConfig
from gatecore.guardrails.hub_texts import map_request
from gatecore.guardrails.pii import PiiGuard, apply_spans
from gatecore.guardrails.tally import Tally

SENTENCE = (
    "the gateway routes each request to a deployment and streams the answer back while the "
    "limits stage counts tokens and the ledger records what every team spent this month"
)
WORDS = SENTENCE.split()
PII = ["ann.lee@example.com", "4111 1111 1111 1111", "+44 20 7946 0958", "123-45-6789", "10.1.2.3",
       "GB82 WEST 1234 5698 7654 32", "sk-proj-" + "aB3" * 12]  # fmt: skip


def prose(n_bytes: int, rng: random.Random, dense: bool) -> str:
    out: list[str] = []
    size = 0
    while size < n_bytes:
        word = rng.choice(PII) if dense and rng.random() < 0.08 else rng.choice(WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)[:n_bytes]


def best_of(fn: object, reps: int, rounds: int = 5) -> float:
    """Seconds per call, the best of `rounds` timings of `reps` calls."""
    call = fn  # type: ignore[assignment]
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            call()  # type: ignore[operator]
        best = min(best, (time.perf_counter() - start) / reps)
    return best


def main() -> None:
    rng = random.Random(7)
    scanner = PiiScanner(PiiScanner.builtin_kinds())
    print("| text | size | µs per scan | MB/s |\n|---|---|---|---|")
    for dense in (False, True):
        for size in (1024, 16 * 1024, 1024 * 1024):
            text = prose(size, rng, dense)
            reps = max(3, 2_000_000 // size)
            seconds = best_of(lambda text=text: scanner.scan(text), reps)
            label = "dense PII" if dense else "no PII"
            print(f"| {label} | {size // 1024} KiB | {seconds * 1e6:.1f} | {size / seconds / 1e6:.0f} |")
    config = GuardrailConfig(
        name="pii", kind="pii", entities={k: "redact" for k in PiiScanner.builtin_kinds()}
    )
    guard = PiiGuard(config)
    for dense in (False, True):
        messages = [{"role": "system", "content": prose(400, rng, False)},
                    {"role": "user", "content": prose(1200, rng, dense)}]  # fmt: skip
        body = orjson.dumps({"model": "m", "messages": messages})

        def whole(body: bytes = body) -> bytes:
            doc = orjson.loads(body)
            tally = Tally()
            changed = map_request(doc, lambda t: apply_spans(t, guard.spans(t, None, tally, False)))
            return orjson.dumps(doc) if changed else body

        seconds = best_of(whole, 2000)
        label = "with PII" if dense else "no PII"
        print(f"input guard, {len(body)} B chat body, {label}: {seconds * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
