"""Fair queuing across tenants for a model served by local engines (`models[].queue`), end to end:
the real gateway in front of the vLLM-like engine emulator (tests/upstreams/engine_emulator.py).

The pool has one replica with one slot and `target_in_flight: 1`, so the order in which the engine
receives requests is the order the gateway's queue sends them on."""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..upstreams.engine_emulator import EngineEmulator
from .admin_client import AdminClient
from .conftest import wait_keys_loaded
from .gateway import MASTER_KEY, Gateway, running_gateway, write_config
from .prometheus_text import parse

FLOOD_KEY = "sk-flood-e2e-51aa"
QUIET_KEY = "sk-quiet-e2e-77b0"
TIMEOUTS = {"connect": 2, "first_byte": 10, "idle": 10, "total": 20}


@pytest.fixture(scope="module")
def engine() -> Iterator[EngineEmulator]:
    with EngineEmulator(slots=1, ttft_s=0.05, tpot_s=0.01, default_output=4) as e:
        yield e


@pytest.fixture(scope="module")
def gw(engine: EngineEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    queue = {
        "by": "key",
        "target_in_flight": 1,
        "max_wait_s": 20,
        "classes": {"interactive": 4, "batch": 1},
        "class_max_wait_s": {"batch": 0.5},
    }
    cfg: dict[str, Any] = {
        "providers": [{"name": "vllm-a", "kind": "openai", "base_url": engine.base_url, "api_key": "none"}],
        "models": [
            {
                "name": "llama",
                "timeouts": TIMEOUTS,
                "deployments": [{"provider": "vllm-a", "model": "m"}],
                "queue": queue,
            },
            {
                "name": "tiny-queue",
                "timeouts": TIMEOUTS,
                "deployments": [{"provider": "vllm-a", "model": "m"}],
                "queue": {**queue, "max_queued": 1},
            },
        ],
        "auth": {
            "master_key": MASTER_KEY,
            "keys": [{"key": FLOOD_KEY, "name": "flood"}, {"key": QUIET_KEY, "name": "quiet"}],
        },
        "routing": {"engine_metrics": {"interval_s": 0.1, "timeout_s": 0.5, "stale_after_s": 2}},
    }
    workdir: Path = tmp_path_factory.mktemp("gpu-queue")
    cfg["store"] = {"url": f"sqlite:///{workdir / 'ledger.db'}"}
    with running_gateway(["--config", str(write_config(cfg, workdir / "g.yaml"))], workdir, config=cfg) as g:
        yield g


def post(
    gw: Gateway,
    key: str,
    content: str,
    max_tokens: int,
    headers: dict[str, str] | None = None,
    model: str = "llama",
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    try:
        body = json.dumps(
            {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": content}]}
        )
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=body,
            headers={"authorization": f"Bearer {key}", "content-type": "application/json", **(headers or {})},
        )
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def queue_metrics(gw: Gateway) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        return parse(conn.getresponse().read().decode())
    finally:
        conn.close()


def wait_until(check: Any, what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def background(
    gw: Gateway, key: str, content: str, max_tokens: int, results: list[Any], **kw: Any
) -> threading.Thread:
    def run() -> None:
        results.append((content, post(gw, key, content, max_tokens, **kw)))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def engine_order(engine: EngineEmulator) -> list[str]:
    """The prompts in the order the engine received them."""
    order = []
    for recorded in sorted(engine.requests, key=lambda r: r.received_at):
        body = recorded.body_json
        if isinstance(body, dict):
            order.append(body["messages"][0]["content"])
    return order


def test_a_quiet_tenant_goes_ahead_of_a_flood(gw: Gateway, engine: EngineEmulator) -> None:
    engine.clear()
    results: list[Any] = []
    threads = [background(gw, FLOOD_KEY, f"flood-{i}", 20, results) for i in range(6)]
    # One runs, five wait in the flooder's queue.
    wait_until(
        lambda: (
            queue_metrics(gw).value(
                "gatecore_queue_length", model="llama", tenant="key:flood", **{"class": "interactive"}
            )
            == 5
        ),
        "the flood did not queue",
    )
    threads.append(background(gw, QUIET_KEY, "quiet-0", 2, results))
    for thread in threads:
        thread.join(30)
    assert all(status == 200 for _, (status, _, _) in results), results
    order = engine_order(engine)
    assert len(order) == 7
    # Without the queue the engine's FIFO would run the quiet request last; with it, it goes next.
    assert order.index("quiet-0") == 1, order
    metrics = queue_metrics(gw)
    assert (
        metrics.value("gatecore_queue_length", model="llama", tenant="key:flood", **{"class": "interactive"})
        == 0
    )
    waited = metrics.value(
        "gatecore_queue_wait_seconds_count", model="llama", tenant="key:quiet", **{"class": "interactive"}
    )
    assert waited >= 1


def test_a_batch_request_past_its_max_wait_gets_429_with_retry_after(
    gw: Gateway, engine: EngineEmulator
) -> None:
    results: list[Any] = []
    holder = background(gw, FLOOD_KEY, "hold-slot", 150, results)  # ~1.5 s on the only slot
    wait_until(lambda: engine.running == 1, "the slot was not taken")
    status, headers, body = post(gw, QUIET_KEY, "late-batch", 2, {"x-gatecore-priority": "batch"})
    assert status == 429, body
    assert b'"queue_timeout"' in body
    assert int(headers["retry-after"]) >= 1
    holder.join(30)
    assert results[0][1][0] == 200
    assert "late-batch" not in engine_order(engine)  # it never reached the engine
    metrics = queue_metrics(gw)
    assert (
        metrics.value(
            "gatecore_queue_rejections_total",
            model="llama",
            tenant="key:quiet",
            reason="timeout",
            **{"class": "batch"},
        )
        >= 1
    )


def test_priority_header_is_checked(gw: Gateway, tmp_path: Path) -> None:
    status, _, body = post(gw, QUIET_KEY, "x", 2, {"x-gatecore-priority": "platinum"})
    assert status == 400 and b'"unknown_priority"' in body
    # A key whose own class is batch may not raise itself; one whose metadata lists it may.
    admin = AdminClient(gw, MASTER_KEY)
    low = admin.ok("POST", "/keys", {"name": "low", "metadata": {"priority": "batch"}}, 201)["key"]
    allowed = admin.ok(
        "POST",
        "/keys",
        {"name": "vip", "metadata": {"priority": "batch", "priorities": ["interactive"]}},
        201,
    )["key"]
    wait_keys_loaded(gw, [low, allowed])
    status, _, body = post(gw, low, "x", 2, {"x-gatecore-priority": "interactive"})
    assert status == 403 and b'"priority_not_allowed"' in body
    assert post(gw, low, "x", 2, {"x-gatecore-priority": "batch"})[0] == 200
    assert post(gw, allowed, "x", 2, {"x-gatecore-priority": "interactive"})[0] == 200


def test_a_client_that_goes_away_leaves_the_queue_at_once(gw: Gateway, engine: EngineEmulator) -> None:
    engine.clear()
    results: list[Any] = []
    holder = background(gw, FLOOD_KEY, "hold-again", 150, results)
    wait_until(lambda: engine.running == 1, "the slot was not taken")
    sock = socket.create_connection(("127.0.0.1", gw.port))
    body = b'{"model": "llama", "max_tokens": 2, "messages": [{"role": "user", "content": "gone-away"}]}'
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"authorization: Bearer {QUIET_KEY}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        + body
    )

    def length() -> float:
        labels = {"model": "llama", "tenant": "key:quiet", "class": "interactive"}
        return float(queue_metrics(gw).value("gatecore_queue_length", **labels))

    wait_until(lambda: length() == 1, "the request did not queue")
    sock.close()
    wait_until(lambda: length() == 0, "the gone client stayed queued", seconds=5)
    assert engine.running == 1  # left while the slot was still held, not when it freed
    holder.join(30)
    assert "gone-away" not in engine_order(engine)


def test_a_full_queue_refuses_at_once(gw: Gateway, engine: EngineEmulator) -> None:
    results: list[Any] = []
    holder = background(gw, FLOOD_KEY, "hold-tiny", 150, results, model="tiny-queue")
    wait_until(lambda: engine.running == 1, "the slot was not taken")
    waiter = background(gw, FLOOD_KEY, "wait-tiny", 2, results, model="tiny-queue")
    wait_until(
        lambda: queue_metrics(gw).total("gatecore_queue_length", model="tiny-queue") == 1, "nothing queued"
    )
    status, headers, body = post(gw, QUIET_KEY, "over", 2, model="tiny-queue")
    assert status == 429 and b'"queue_full"' in body and "retry-after" in headers
    holder.join(30)
    waiter.join(30)
    assert sorted(r[1][0] for r in results) == [200, 200]


def test_answers_and_ledger_rows_carry_the_engine_stamp(gw: Gateway, engine: EngineEmulator) -> None:
    stamp = "vllm/0.6.3.post1 org/m@0123abcd"  # /metrics names, /version, /v1/models root and revision
    headers: dict[str, str] = {}

    def stamped() -> bool:
        nonlocal headers
        status, headers, _ = post(gw, QUIET_KEY, "stamp-me", 2, {"x-request-id": "stamp-e2e-1"})
        return status == 200 and "x-gatecore-served-by" in headers

    wait_until(stamped, "no x-gatecore-served-by")
    assert headers["x-gatecore-served-by"] == stamp
    assert gw.config is not None
    db = gw.config["store"]["url"].removeprefix("sqlite:///")
    rows: list[tuple[str]] = []

    def written() -> bool:
        nonlocal rows
        with sqlite3.connect(db) as conn:
            rows = conn.execute(
                "SELECT served_by FROM usage_ledger WHERE request_id = 'stamp-e2e-1'"
            ).fetchall()
        return bool(rows)

    wait_until(written, "no ledger row")
    assert rows[-1][0] == stamp
