"""Graceful drain: SIGTERM to the main process (as Kubernetes and systemd send it) turns /readyz to
503 first, then the server stops accepting, lets 50 live streams finish, flushes the ledger and exits
0: every stream complete, every ledger row present exactly once."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from ..e2e.gateway import MASTER_KEY, GatewayFactory
from ..e2e.ledger_store import LedgerStore
from ..services.postgres import PostgresServer
from ..upstreams.openai_mock import MockUpstream
from .conftest import STREAM_CHUNKS, LiveStreams, get_json


def drain_config(upstream: MockUpstream, store_url: str, spool: Path) -> dict[str, Any]:
    return {
        "server": {"shutdown_grace_s": 20, "drain_delay_s": 1.0},
        "providers": [{"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up"}],
        "models": [
            {
                "name": "m1",
                "deployments": [{"provider": "up", "model": "upstream-model-1"}],
                "timeouts": {"connect": 2, "first_byte": 10, "idle": 10, "total": 30},
            }
        ],
        "auth": {"master_key": MASTER_KEY},
        "store": {"url": store_url},
        "ledger": {"spool_dir": str(spool), "flush_interval_s": 0.05},
    }


# SIGTERM to the main process alone (a kubelet, systemd's KillMode=mixed) or to the whole process
# group (KillMode=control-group, a terminal): the workers then get it twice, straight and from the main.
@pytest.mark.parametrize(("engine", "target"), [("sqlite", "main"), ("postgresql", "group")])
def test_sigterm_drains_live_streams(
    engine: str,
    target: str,
    gateway_factory: GatewayFactory,
    upstream: MockUpstream,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    if engine == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database()
    gw = gateway_factory(drain_config(upstream, url, tmp_path / "spool"), workers=2)
    seen: dict[str, Any] = {}

    def terminate() -> None:
        if target == "main":
            gw.proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(gw.proc.pid, signal.SIGTERM)
        # Within the drain delay the workers still answer, and readiness is off (the signal reaches
        # the workers through the main process: a few polls).
        deadline = time.monotonic() + 0.8
        while time.monotonic() < deadline:
            seen["ready"] = get_json(gw.port, "/readyz")
            if seen["ready"][0] == 503:
                break
            time.sleep(0.02)

    streams = LiveStreams(gw, "m1", 50, gap_ms=80, prefix=f"drain-{engine}")
    results = asyncio.run(streams.run(terminate))
    assert seen["ready"] == (503, {"status": "draining"})
    assert results == [(STREAM_CHUNKS, "stop")] * 50
    assert gw.proc.wait(30) == 0, gw.output()[-3000:]
    # Every stream is in the ledger exactly once (written at shutdown, nothing left in a spool).
    rows = LedgerStore(url).rows()
    counts = collections.Counter(r["request_id"] for r in rows)
    assert {rid: counts[rid] for rid in streams.request_ids} == dict.fromkeys(streams.request_ids, 1)
    assert all(r["status"] == 200 and r["streamed"] for r in rows)
    assert not list((tmp_path / "spool").glob("*.jsonl"))
    # After exit nothing answers (the stop came after the streams ended, not before).
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        try:
            get_json(gw.port, "/healthz", timeout=0.2)
        except OSError:
            break
    else:
        raise AssertionError("the server still answers after exit")
