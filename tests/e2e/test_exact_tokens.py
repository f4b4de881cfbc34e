"""Exact token counts with a deployment's own tokenizer (`deployments[].tokenizer.path`): gatecore's
Rust counter (the `tokenizers` crate, `_core.HfTokenizer`) gives exactly the counts of the Python
`tokenizers` package on a small BPE `tokenizer.json` built here, and the gateway admits tpm with
them (the `x-ratelimit-remaining-tokens` it reports)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gatecore._core import HfTokenizer

from ..upstreams.openai_mock import MockUpstream
from .conftest import make_client
from .gateway import GatewayFactory

tokenizers = pytest.importorskip("tokenizers", reason="the test extra's `tokenizers` builds the tokenizer")

CORPUS = (
    "Shall I compare thee to a summer's day? Thou art more lovely and more temperate. "
    "Rough winds do shake the darling buds of May, and summer's lease hath all too short a date. "
    "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. "
    "0123456789 benchmark gateway latency tokens stream request response model server client. "
)
TEXTS = [
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Ünïcödé — 東京 🚀 emoji and accents, NFKC: ﬁ ①",
    "  leading and trailing spaces  \n\t tabs and newlines\n",
    CORPUS * 3,
    "x" * 5000,
    "",
]
KEY = "sk-exact-tokens-e2e-6c1d"


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A byte-level BPE tokenizer with an NFKC normalizer, trained on CORPUS (400 tokens)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([CORPUS] * 20, trainer=trainer)
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    tokenizer.save(str(path))
    yield path


def reference(path: Path, text: str) -> int:
    from tokenizers import Tokenizer

    return len(Tokenizer.from_file(str(path)).encode(text, add_special_tokens=False).ids)


def chat_body(texts: list[str], max_tokens: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "local", "messages": [{"role": "user", "content": t} for t in texts]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


def test_counts_equal_the_tokenizers_package(tokenizer_json: Path) -> None:
    counter = HfTokenizer(str(tokenizer_json))
    for text in TEXTS:
        assert counter.count(text) == reference(tokenizer_json, text), text[:40]
    # A prompt: each message's tokens plus one per newline joining them (as tiktoken's estimate).
    body = json.dumps(chat_body(TEXTS[:4])).encode()
    expected = sum(reference(tokenizer_json, t) for t in TEXTS[:4]) + 3
    assert counter.count_prompt(body) == expected
    assert counter.count_prompt(body) == expected  # remembered counts give the same
    assert counter.count_prompt(b"not json") == 0


def test_a_file_that_is_not_a_tokenizer_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"model": 3}')
    with pytest.raises(ValueError):
        HfTokenizer(str(bad))
    with pytest.raises(ValueError):
        HfTokenizer(str(tmp_path / "missing.json"))


def test_tpm_admission_counts_with_the_deployments_tokenizer(
    tokenizer_json: Path, upstream: MockUpstream, gateway_factory: GatewayFactory
) -> None:
    config = {
        "providers": [{"name": "local", "kind": "openai", "base_url": upstream.base_url, "api_key": "none"}],
        "models": [
            {
                "name": "local",
                "deployments": [
                    {"provider": "local", "model": "m", "tokenizer": {"path": str(tokenizer_json)}}
                ],
            }
        ],
        "auth": {"master_key": "sk-master-exact-e2e", "keys": [{"key": KEY, "name": "exact", "tpm": 100000}]},
    }
    gw = gateway_factory(config)
    texts = [TEXTS[1], TEXTS[2]]
    exact = sum(reference(tokenizer_json, t) for t in texts) + 1
    with make_client(gw, KEY) as client:
        raw = client.chat.completions.with_raw_response.create(**chat_body(texts, max_tokens=10))
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) == 100000 - (exact + 10)


def test_check_reports_a_bad_tokenizer_path(tmp_path: Path, gateway_factory: GatewayFactory) -> None:
    from .gateway import run_cli, write_config

    config = {
        "providers": [
            {"name": "local", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "x"}
        ],
        "models": [
            {
                "name": "local",
                "deployments": [
                    {"provider": "local", "model": "m", "tokenizer": {"path": str(tmp_path / "no.json")}}
                ],
            }
        ],
        "auth": {"master_key": "sk-master-exact-e2e"},
    }
    result = run_cli(["check", "--config", str(write_config(config, tmp_path / "g.yaml"))])
    assert result.returncode != 0
    assert "models[0].deployments[0].tokenizer.path: no such file" in result.stdout + result.stderr
