"""The usage ledger end to end, on SQLite and a real PostgreSQL: exactly one row per request with the
right tokens and cost (streams, errors, cut streams, client disconnects), none lost and none doubled
when the store goes away for a while or the server is stopped with SIGTERM under load."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ..services.postgres import PostgresServer
from ..upstreams.openai_mock import MockUpstream
from .conftest import make_client
from .gateway import MASTER_KEY, Gateway, GatewayFactory
from .ledger_store import LedgerStore, spool_files

PRICE = {"input_per_1m": 2.0, "output_per_1m": 8.0, "cached_input_per_1m": 0.5}
KINDS = ("ok", "stream", "error", "cut", "disconnect")


def ledger_config(upstream: MockUpstream, store_url: str, spool_dir: Path, **ledger: Any) -> dict[str, Any]:
    return {
        "server": {"access_log": True},
        "providers": [
            {"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "${UP_KEY}"}
        ],
        "models": [
            {
                "name": "gpt-priced",
                "deployments": [{"provider": "up", "model": "upstream-model-1", "pricing": dict(PRICE)}],
                "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 20},
            }
        ],
        "auth": {"master_key": MASTER_KEY},
        "store": {"url": store_url},
        "ledger": {
            "spool_dir": str(spool_dir),
            "flush_interval_s": 0.05,
            "write_timeout_s": 0.5,
            "retry_interval_s": 0.3,
            **ledger,
        },
    }


@pytest.fixture
def store(store_url: str, request: pytest.FixtureRequest) -> Iterator[LedgerStore]:
    postgres: PostgresServer | None = (
        request.getfixturevalue("postgres") if store_url.startswith("postgres") else None
    )
    ledger_store = LedgerStore.for_test(store_url, postgres)
    yield ledger_store
    ledger_store.close()


def expected_cost(row: dict[str, Any]) -> float:
    cached = row["cached_tokens"]
    return (
        float(
            (row["input_tokens"] - cached) * PRICE["input_per_1m"]
            + cached * PRICE["cached_input_per_1m"]
            + row["output_tokens"] * PRICE["output_per_1m"]
        )
        / 1e6
    )


def send(client: openai.OpenAI, kind: str, rid: str) -> bool:
    """One request of `kind`; True when the client got a complete answer."""
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": f"ledger {kind} {rid[-6:]} words here"}
    ]
    headers = {"x-request-id": rid}
    try:
        if kind == "ok":
            client.chat.completions.create(model="gpt-priced", messages=messages, extra_headers=headers)
        elif kind == "stream":
            chunks = client.chat.completions.create(
                model="gpt-priced",
                messages=messages,
                stream=True,
                extra_headers=headers,
                extra_body={"mock": {"chunks": 6, "gap_ms": 5}},
            )
            for _ in chunks:
                pass
        elif kind == "error":
            client.chat.completions.create(
                model="gpt-priced",
                messages=messages,
                extra_headers=headers,
                extra_body={"mock": {"status": 500}},
            )
        elif kind == "cut":
            chunks = client.chat.completions.create(
                model="gpt-priced",
                messages=messages,
                stream=True,
                extra_headers=headers,
                extra_body={"mock": {"chunks": 8, "cut_after": 4}},
            )
            for _ in chunks:
                pass
        else:  # disconnect: read two events, then hang up
            chunks = client.chat.completions.create(
                model="gpt-priced",
                messages=messages,
                stream=True,
                extra_headers=headers,
                extra_body={"mock": {"chunks": 40, "gap_ms": 25}},
            )
            for i, _ in enumerate(chunks):
                if i == 1:
                    break
            chunks.response.close()
            return False
    except openai.APIError:
        return False
    return True


def run_mix(gw: Gateway, count: int, tag: str) -> dict[str, str]:
    """`count` requests cycling through KINDS; request id → kind."""
    sent: dict[str, str] = {}
    with make_client(gw) as client:
        for i in range(count):
            rid = f"ledger-{tag}-{i}-{uuid.uuid4().hex[:8]}"
            kind = KINDS[i % len(KINDS)]
            send(client, kind, rid)
            sent[rid] = kind
    return sent


def check_rows(gw: Gateway, upstream: MockUpstream, rows: list[dict[str, Any]], sent: dict[str, str]) -> None:
    """Exactly one row per request, each with the tokens gatecore accounted and the right cost."""
    ours = [r for r in rows if r["request_id"] in sent]
    assert len(ours) == len(sent), f"{len(ours)} rows for {len(sent)} requests"
    assert len({r["request_id"] for r in ours}) == len(sent), "a request has two rows"
    assert len({r["id"] for r in rows}) == len(rows)
    for row in ours:
        rid, kind = row["request_id"], sent[row["request_id"]]
        entry = gw.wait_access_log(rid)
        assert (row["input_tokens"], row["output_tokens"], row["cached_tokens"]) == (
            entry["input_tokens"],
            entry["output_tokens"],
            entry["cached_tokens"],
        ), kind
        assert row["status"] == entry["status"], kind
        assert row["cost_usd"] == pytest.approx(expected_cost(row), rel=1e-9, abs=1e-15), kind
        assert row["model"] == "gpt-priced" and row["deployment"] == "up/upstream-model-1"
        assert row["key_id"] == "master"
        assert bool(row["streamed"]) == (kind not in ("ok", "error")), kind
        assert row["latency_ms"] > 0
        if kind in ("ok", "stream"):
            usage = _upstream_usage(upstream, rid, kind)
            assert (row["input_tokens"], row["output_tokens"]) == (
                usage["prompt_tokens"],
                usage["completion_tokens"],
            )
            assert row["status"] == 200 and row["error_type"] is None
            assert row["ttft_ms"] is not None and 0 < row["ttft_ms"] <= row["latency_ms"]
            assert row["cost_usd"] > 0
        elif kind == "error":
            assert row["status"] == 500 and row["error_type"] == "upstream_error"
            assert row["cost_usd"] == 0
        elif kind == "cut":
            assert row["status"] == 200 and row["error_type"] is not None
            assert row["output_tokens"] > 0 and row["cost_usd"] > 0  # billed what was produced
        else:
            assert row["status"] == 499 and bool(row["client_gone"])
            assert row["output_tokens"] > 0


def _upstream_usage(upstream: MockUpstream, rid: str, kind: str) -> dict[str, Any]:
    recorded = upstream.wait_for(rid)
    if kind == "ok":
        usage: dict[str, Any] = recorded.response_json["usage"]
        return usage
    return next(e["usage"] for e in recorded.event_objects() if e.get("usage"))


def test_one_row_per_request_with_tokens_and_cost(
    gateway_factory: GatewayFactory, upstream: MockUpstream, store: LedgerStore, tmp_path: Path
) -> None:
    gw = gateway_factory(ledger_config(upstream, store.gateway_url, tmp_path / "spool"))
    sent = run_mix(gw, 20, "all")
    rid = "ledger-run-tag-" + uuid.uuid4().hex[:8]
    with make_client(gw) as client:
        client.chat.completions.create(
            model="gpt-priced",
            messages=[{"role": "user", "content": "tagged"}],
            extra_headers={"x-request-id": rid, "x-gatecore-run-id": "eval-run-7"},
        )
    sent[rid] = "ok"
    rows = store.wait_rows(set(sent))
    check_rows(gw, upstream, rows, sent)
    assert next(r for r in rows if r["request_id"] == rid)["run_id"] == "eval-run-7"
    assert all(r["run_id"] is None for r in rows if r["request_id"] != rid)
    assert spool_files(tmp_path / "spool") == []  # the store was up: nothing was spooled


def test_store_unavailable_for_a_while_loses_and_doubles_nothing(
    gateway_factory: GatewayFactory, upstream: MockUpstream, store: LedgerStore, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    gw = gateway_factory(ledger_config(upstream, store.gateway_url, spool))
    sent = run_mix(gw, 10, "before")
    store.wait_rows(set(sent))
    store.take_down()
    try:
        during = run_mix(gw, 15, "during")
        deadline = time.monotonic() + 10
        while not spool_files(spool) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert spool_files(spool), "rows were spooled while the store was unavailable"
    finally:
        store.bring_back()
    after = run_mix(gw, 10, "after")
    sent |= during | after
    rows = store.wait_rows(set(sent))
    check_rows(gw, upstream, rows, sent)
    assert len(rows) == len(sent)
    deadline = time.monotonic() + 10
    while spool_files(spool) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spool_files(spool) == [], "replayed segments are removed"
    log = gw.stderr()
    assert "spooling" in log and "replayed" in log


def test_sigterm_mid_load_keeps_every_answered_request(
    gateway_factory: GatewayFactory, upstream: MockUpstream, store: LedgerStore, tmp_path: Path
) -> None:
    """Load from 4 threads; the store goes away, then the server gets SIGTERM while requests are in
    flight. A new server on the same store and spool replays what the first could not write."""
    spool = tmp_path / "spool"
    config = ledger_config(upstream, store.gateway_url, spool)
    gw = gateway_factory(config, workers=2)
    answered: set[str] = set()
    attempted: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        with make_client(gw, timeout=5.0) as client:
            for i in range(200):  # bounded; stopped by the server going away
                if stop.is_set():
                    return
                rid = f"ledger-term-{worker}-{i}-{uuid.uuid4().hex[:6]}"
                kind = ("ok", "stream")[i % 2]
                with lock:
                    attempted.add(rid)
                try:
                    complete = send(client, kind, rid)
                except (openai.APIConnectionError, openai.APITimeoutError):
                    return
                if complete:
                    with lock:
                        answered.add(rid)

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.8)
    store.take_down()
    time.sleep(0.8)
    gw.stop()  # SIGTERM to the server's process group, then wait for it to exit
    stop.set()
    for thread in threads:
        thread.join(20)
    assert not any(t.is_alive() for t in threads)
    assert len(answered) >= 10
    store.bring_back()
    assert spool_files(spool), "what the store could not take was spooled before exit"
    restarted = gateway_factory(config)
    rows = store.wait_rows(answered, timeout=30)
    ours = [r for r in rows if r["request_id"] in attempted]
    assert {r["request_id"] for r in ours} >= answered
    assert len(ours) == len({r["request_id"] for r in ours}), "no request was written twice"
    assert len({r["id"] for r in rows}) == len(rows)
    deadline = time.monotonic() + 10
    while spool_files(spool) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spool_files(spool) == []
    assert "replayed" in restarted.stderr()
