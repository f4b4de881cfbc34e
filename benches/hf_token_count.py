"""In-process: the cost of exact token counts with a deployment's own tokenizer.json
(`_core.HfTokenizer`, the Rust `tokenizers` crate) in µs per KB of text, beside tiktoken's o200k_base
(`_core.count_tokens`), on English prose of 1, 16 and 64 KB. The tokenizer is a byte-level BPE with an
NFKC normalizer trained here (vocabulary VOCAB): real models' vocabularies are larger, which mostly
changes the merges' table size, not the pass over the text. Best of REPEATS; bounded by N.

    PYTHONPATH=python .venv/bin/python benches/hf_token_count.py [N] [REPEATS]   (needs `tokenizers`)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from gatecore._core import HfTokenizer, count_tokens

VOCAB = 8000
PROSE = (
    "Shall I compare thee to a summer's day? Thou art more lovely and more temperate. Rough winds do "
    "shake the darling buds of May, and summer's lease hath all too short a date. The quick brown fox "
    "jumps over the lazy dog; pack my box with five dozen liquor jugs. A gateway routes each request to "
    "the replica whose cache already holds its prefix, and counts the tokens it will bill. "
)


def build(path: Path) -> None:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    words = PROSE.split()
    corpus = [" ".join(words[i:] + words[:i]) for i in range(len(words))] * 20
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    tokenizer.save(str(path))


def best_us(fn: object, text: str, n: int, repeats: int) -> float:
    assert callable(fn)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn(text)
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tokenizer.json"
        build(path)
        hf = HfTokenizer(str(path))
    print("| text | HfTokenizer µs | µs/KB | tiktoken o200k µs | µs/KB |")
    print("|---|---|---|---|---|")
    for kb in (1, 16, 64):
        text = (PROSE * (kb * 1024 // len(PROSE) + 1))[: kb * 1024]
        runs = max(5, n // kb)
        hf_us = best_us(hf.count, text, runs, repeats)
        tk_us = best_us(lambda t: count_tokens(t, "o200k_base"), text, runs, repeats)
        print(f"| {kb} KB | {hf_us:.1f} | {hf_us / kb:.1f} | {tk_us:.1f} | {tk_us / kb:.1f} |")


if __name__ == "__main__":
    main()
