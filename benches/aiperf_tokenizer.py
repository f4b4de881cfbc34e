"""Train a tiny byte-level BPE tokenizer on the spot and save it where aiperf can load it offline.

Run with the aiperf venv's Python (it brings `tokenizers`, and `transformers` when installed):

    .venv-aiperf/bin/python benches/aiperf_tokenizer.py DIR

aiperf needs a tokenizer to build its synthetic prompts even with `--use-server-token-count`; a
public one would be downloaded from the Hugging Face Hub, which the test machines cannot reach. A
few hundred byte-level BPE merges trained on a fixed text are enough for prompts of any text. Saved
with `transformers`' `PreTrainedTokenizerFast.save_pretrained` (tokenizer.json plus its config),
which aiperf's `AutoTokenizer.from_pretrained(DIR)` loads without the network.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

VOCAB = 400
# Any fixed text: the merges only need to exist, prompts are built from the tokenizer's own corpus.
TEXT = (
    "Shall I compare thee to a summer's day? Thou art more lovely and more temperate. "
    "Rough winds do shake the darling buds of May, and summer's lease hath all too short a date. "
    "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. "
    "0123456789 benchmark gateway latency tokens stream request response model server client. "
)


def train(directory: Path) -> None:
    """Train and save the tokenizer into `directory` (created if missing)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([TEXT] * 20, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    directory.mkdir(parents=True, exist_ok=True)
    wrapped.save_pretrained(str(directory))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: aiperf_tokenizer.py DIR")
    train(Path(sys.argv[1]))
