"""Issue 17, low, on the command line: `gatecore keys rotate --grace-s 1e300` (and out-of-range
limits or expiries on `keys create`) skipped the admin API's bounds and committed values that made
the key listing fail afterwards. The CLI now checks the same bounds, before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

from ..e2e.gateway import run_cli, write_config
from ..e2e.test_identity import identity_config
from ..upstreams.openai_mock import MockUpstream


def test_cli_refuses_what_the_admin_api_refuses(upstream: MockUpstream, tmp_path: Path) -> None:
    path = write_config(identity_config(upstream, f"sqlite:///{tmp_path / 'keys.db'}"), tmp_path / "cli.yaml")
    created = run_cli(["keys", "--config", str(path), "create", "--name", "rotated"])
    assert created.returncode == 0, created.stderr
    key_id = json.loads(created.stdout)["id"]
    for args, field in (
        (["rotate", key_id, "--grace-s", "1e300"], "grace_s"),
        (["create", "--name", "x", "--expires-in-s", "1e300"], "expires_in_s"),
        (["create", "--name", "x", "--rpm", str(10**15)], "rpm"),
    ):
        refused = run_cli(["keys", "--config", str(path), *args])
        assert refused.returncode == 1, args
        assert field in refused.stderr and "Traceback" not in refused.stderr
    listed = run_cli(["keys", "--config", str(path), "list"])
    assert listed.returncode == 0 and key_id in listed.stdout
    assert len(json.loads(listed.stdout)) == 1  # nothing was committed
