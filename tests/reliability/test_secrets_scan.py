"""Secrets (issue 25): a representative workload — answers, streams, upstream faults, refusals, bad
keys, admin reads — then every log line, the /metrics text, every ledger row, every admin answer and
every error body it produced is scanned for the credentials it used (client keys, the master key, the
upstream provider key), whole or by their distinctive tail: zero hits.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from ..e2e.admin_client import AdminClient
from ..e2e.gateway import MASTER_KEY
from .conftest import FAULT_KEY, LOAD_KEY, UPSTREAM_SECRET, FaultGateway
from .faults_client import PATHS, send

SECRETS = {
    "client key": FAULT_KEY,
    "load key": LOAD_KEY,
    "master key": MASTER_KEY,
    "upstream key": UPSTREAM_SECRET,
}


def _needles() -> dict[str, str]:
    """Each secret whole and its last 12 characters (a prefix like `sk-` is no secret)."""
    out = {}
    for name, secret in SECRETS.items():
        out[name] = secret
        out[f"{name} (tail)"] = secret[-12:]
    return out


def test_no_credential_reaches_logs_metrics_ledger_admin_or_errors(fault_gateway: FaultGateway) -> None:
    gw = fault_gateway.gateway
    produced: list[tuple[str, str]] = []  # (where, text)
    for api in PATHS:
        for stream in (False, True):
            for model in ("ok", "refused", "malformed-chunk", "reset-mid-stream"):
                answer = send(gw.port, api, model, stream, LOAD_KEY)
                produced.append((f"{api} {model} stream={stream}", answer.body.decode(errors="replace")))
                produced += [(f"{api} {model} event", e.decode(errors="replace")) for e in answer.events]
            # A wrong key that shares the real one's prefix, an unknown model, a malformed body.
            for key, model in ((LOAD_KEY[:-4] + "XXXX", "ok"), (LOAD_KEY, "no-such-model")):
                answer = send(gw.port, api, model, stream, key)
                produced.append((f"{api} refused {model}", answer.body.decode(errors="replace")))
    admin = AdminClient(gw, MASTER_KEY)
    try:
        status, spec = admin.call("GET", "/openapi.json")
        assert status == 200
        prefix = "/admin/v1"
        paths = [p.removeprefix(prefix) for p, ops in spec["paths"].items() if "get" in ops and "{" not in p]
        assert paths
        for path in paths:
            status, answer = admin.call("GET", path)
            produced.append(
                (f"admin {path} ({status})", json.dumps(answer) if not isinstance(answer, str) else answer)
            )
        assert sum("(200)" in where for where, _ in produced) >= 3, "the admin reads answered nothing"
        # An admin call with a wrong master key: its refusal too.
        status, answer = AdminClient(gw, MASTER_KEY[:-3] + "xyz").call("GET", "/keys")
        assert status in (401, 403)
        produced.append(("admin refused", json.dumps(answer)))
    finally:
        admin.close()
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{gw.port}/metrics", timeout=5).read().decode()
    produced.append(("/metrics", metrics))
    rows: list[dict[str, Any]] = fault_gateway.ledger.rows()
    assert rows
    produced += [(f"ledger row {r['request_id']}", json.dumps(r, default=str)) for r in rows]
    produced.append(("stdout", gw.stdout()))
    produced.append(("stderr", gw.stderr()))
    assert any(where == "stdout" and '"request_id"' in text for where, text in produced), "no access log"

    hits = [
        f"{name} in {where}"
        for where, text in produced
        for name, needle in _needles().items()
        if needle in text
    ]
    assert not hits, "\n".join(hits[:20])
