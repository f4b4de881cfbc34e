"""The disk holding the SQLite store fills up (issue 25): the ledger spools the rows the store refuses,
loses none, and replays them once space returns, without a restart.

A full disk without root: the worker's RLIMIT_FSIZE is lowered (prlimit, same user) to the size of the
store's WAL, so every write that would grow the store's files fails (EFBIG, as ENOSPC would) while the
spool's new segments, far smaller, still go to disk (as when the spool is on another disk,
`ledger.spool_dir`). Raising the limit again is the space coming back. CPython ignores SIGXFSZ, so the
failing write is an error the store reports, not a signal that kills the worker.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..e2e.gateway import MASTER_KEY, Gateway, running_gateway, write_config
from ..e2e.ledger_store import LedgerStore, spool_files
from ..upstreams.openai_mock import MockUpstream
from .conftest import LOAD_KEY
from .faults_client import send
from .test_idle_clients import _worker

pytestmark = pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="Linux prlimit")

BEFORE, DURING, AFTER = 20, 60, 20


@pytest.fixture
def store_gateway(tmp_path: Path, upstream: MockUpstream) -> Iterator[tuple[Gateway, Path]]:
    config = {
        "server": {"access_log": False},
        "providers": [{"name": "p-ok", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up"}],
        "models": [{"name": "ok", "deployments": [{"provider": "p-ok", "model": "ok-model"}]}],
        "auth": {"master_key": MASTER_KEY, "keys": [{"key": LOAD_KEY, "name": "load"}]},
        "ledger": {"flush_interval_s": 0.05, "retry_interval_s": 0.5},
    }
    path = write_config(config, tmp_path / "config.yaml")
    with running_gateway(["--config", str(path)], tmp_path, config=config) as gw:
        yield gw, tmp_path / "gatecore.db"


def _send(port: int, n: int) -> set[str]:
    rids = set()
    for _ in range(n):
        answer = send(port, "chat", "ok", False, LOAD_KEY)
        assert answer.status == 200, answer.body[:200]
        rids.add(answer.rid)
    return rids


def test_store_disk_full_spools_and_replays(store_gateway: tuple[Gateway, Path]) -> None:
    gw, db = store_gateway
    ledger = LedgerStore(f"sqlite:///{db}")
    spool = Path(str(db) + ".ledger-spool")
    worker = _worker(gw.proc.pid)
    before = _send(gw.port, BEFORE)
    ledger.wait_rows(before)
    time.sleep(0.3)  # the writer is idle: nothing is being appended to the WAL now
    wal = db.with_name(db.name + "-wal")
    full = max(wal.stat().st_size, 1)
    original = resource.prlimit(worker, resource.RLIMIT_FSIZE)
    resource.prlimit(worker, resource.RLIMIT_FSIZE, (full, original[1]))
    try:
        during = _send(gw.port, DURING)
        # The refused rows reach the spool (bounded wait); the store holds only the rows from before.
        deadline = time.monotonic() + 10
        while sum(len(p.read_bytes().splitlines()) for p in spool_files(spool)) < DURING:
            assert time.monotonic() < deadline, "rows neither stored nor spooled"
            time.sleep(0.1)
        spooled = sum(len(p.read_bytes().splitlines()) for p in spool_files(spool))
        stored = {r["request_id"] for r in ledger.rows()}
        assert stored == before
        assert spooled == DURING
        assert gw.alive()
    finally:
        resource.prlimit(worker, resource.RLIMIT_FSIZE, original)
    # Space is back: the spool is replayed on the next retry, no restart; new rows go straight in.
    after = _send(gw.port, AFTER)
    rows = ledger.wait_rows(before | during | after)
    ids = [r["request_id"] for r in rows]
    assert len(ids) == len(set(ids)) == BEFORE + DURING + AFTER  # none lost, none twice
    deadline = time.monotonic() + 10
    while spool_files(spool) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert spool_files(spool) == []
    assert _worker(gw.proc.pid) == worker
    log = gw.output()
    assert "the store did not take a batch" in log and "replayed" in log, log[-2000:]
