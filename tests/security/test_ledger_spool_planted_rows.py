"""Issue 17, low: the PostgreSQL ledger spool was a predictable directory in the shared temp dir,
created with `exist_ok`, and every segment found in it was replayed into the ledger. Another local
user could create it first (or write into it) and plant rows: spend, usage, budgets. The spool is now
a directory that this user owns and no one else may write, checked before anything is replayed; a
server refuses to start on one that is not."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..e2e.gateway import MASTER_KEY, http_get_status, running_gateway, write_config
from ..e2e.test_runs import admin_get, runs_config
from ..upstreams.openai_mock import MockUpstream


def test_a_spool_others_can_write_is_never_replayed(upstream: MockUpstream, tmp_path: Path) -> None:
    spool = tmp_path / "shared-spool"
    spool.mkdir()
    os.chmod(spool, 0o777)  # as if created first by, or writable by, another local user
    # A planted segment of a "dead process": old code replayed it into the ledger (and deleted it).
    (spool / "deadbeef-00000001.jsonl").write_text(json.dumps(["planted"]) + "\n")
    config = runs_config(upstream, f"sqlite:///{tmp_path / 'spool.db'}")
    config["ledger"]["spool_dir"] = str(spool)
    path = write_config(config, tmp_path / "gatecore.yaml")
    try:
        with running_gateway(["--config", str(path)], tmp_path / "gw", attempts=1) as gw:
            # Started anyway (old code): the planted segment must at least not have been replayed.
            time.sleep(1.0)
            assert (spool / "deadbeef-00000001.jsonl").exists()
            raise AssertionError(f"served on an unsafe spool: {admin_get(gw, '/usage')}")
    except RuntimeError as exc:  # did not become ready
        assert "not private" in str(exc) or "can be written by others" in str(exc), str(exc)[-3000:]
    assert (spool / "deadbeef-00000001.jsonl").exists()
    assert MASTER_KEY not in str(spool)


def test_the_default_spool_is_private(upstream: MockUpstream, tmp_path: Path) -> None:
    spool = tmp_path / "fresh-spool"
    config = runs_config(upstream, f"sqlite:///{tmp_path / 'spool.db'}")
    config["ledger"]["spool_dir"] = str(spool)
    path = write_config(config, tmp_path / "gatecore.yaml")
    with running_gateway(["--config", str(path)], tmp_path / "gw") as gw:
        assert http_get_status(gw.port, "/healthz") == 200
        assert os.stat(spool).st_mode & 0o777 == 0o700
