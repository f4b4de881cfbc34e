"""Every guardrail action is a ledger event (issue 20): the row of a request says what its guards did
(`guard:type:action=count`), a blocked request's row too, and never the matched text."""

from __future__ import annotations

import uuid
from pathlib import Path

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream
from .conftest import make_client
from .gateway import MASTER_KEY, GatewayFactory
from .ledger_store import LedgerStore

EMAIL = "jane.doe@example.com"
SSN = "123-45-6789"


def test_guardrail_actions_are_in_the_ledger(
    gateway_factory: GatewayFactory, upstream: MockUpstream, tmp_path: Path
) -> None:
    config = {
        "providers": [{"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-up"}],
        "models": [
            {"name": "m", "deployments": [{"provider": "up", "model": "up-m"}], "guardrails": ["pii"]}
        ],
        "guardrails": [{"name": "pii", "kind": "pii", "entities": {"email": "redact", "us_ssn": "block"}}],
        "auth": {"master_key": MASTER_KEY},
        "store": {"url": f"sqlite:///{tmp_path / 'ledger.db'}"},
        "ledger": {"flush_interval_s": 0.05},
    }
    gw = gateway_factory(config)
    redacted, blocked, clean = (f"gl-{uuid.uuid4().hex[:10]}" for _ in range(3))
    with make_client(gw) as client:
        text = f"mail {EMAIL} and {EMAIL.upper()}"
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": text}], extra_headers={"x-request-id": redacted}
        )
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": f"ssn {SSN}"}],
                extra_headers={"x-request-id": blocked},
            )
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "nothing here"}],
            extra_headers={"x-request-id": clean},
        )
    store = LedgerStore(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        rows = {row["request_id"]: row for row in store.wait_rows({redacted, blocked, clean})}
    finally:
        store.close()
    assert rows[redacted]["guardrails"] == "pii:email:redact=2"
    assert (rows[blocked]["status"], rows[blocked]["guardrails"]) == (400, "pii:us_ssn:block=1")
    assert rows[clean]["guardrails"] is None
    assert not any(EMAIL.lower() in str(row).lower() or SSN in str(row) for row in rows.values())
