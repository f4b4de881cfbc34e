"""Issue 17, low: the SQLite store was created 0644, so any local user could read key hashes,
e-mails and the whole ledger. A server now creates it 0600 (and its -wal/-shm follow), and tightens
a file an older version left readable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..e2e.gateway import GatewayFactory, standard_config
from ..upstreams.openai_mock import MockUpstream, RefusedPort


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_sqlite_store_is_readable_by_its_owner_only(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, tmp_path: Path
) -> None:
    old = tmp_path / "old.db"
    old.touch(mode=0o644)
    os.chmod(old, 0o644)  # as an older version (umask 022) left it
    for path in (tmp_path / "new.db", old):
        config = standard_config(upstream.base_url, refused.base_url)
        config["store"] = {"url": f"sqlite:///{path}"}
        gateway = gateway_factory(config)
        assert _mode(path) == 0o600, oct(_mode(path))
        for suffix in ("-wal", "-shm"):
            side = Path(str(path) + suffix)
            if side.exists():
                assert _mode(side) & 0o077 == 0, (side, oct(_mode(side)))
        gateway.stop()
