"""A published prompt's `guardrail` (issue 21 with issue 20): the guard it names runs on every call of
that prompt, on top of the model's, whatever the model; a name the config does not have is refused
when the prompt is published, not discovered at call time."""

from __future__ import annotations

import uuid
from typing import Any

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream
from .admin_client import AdminClient
from .conftest import make_client
from .gateway import MASTER_KEY, GatewayFactory
from .prompt_helpers import call_prompt, prompts_config, template

EMAIL = "jane.doe@example.com"
PII = {"name": "pii", "kind": "pii", "entities": {"email": "redact", "us_ssn": "block"}}


def _user_text(upstream: MockUpstream, rid: str) -> str:
    messages: list[dict[str, Any]] = upstream.wait_for(rid).body_json["messages"]
    return str(messages[-1]["content"])


def test_a_prompts_guardrail_runs_on_its_calls(
    gateway_factory: GatewayFactory, upstream: MockUpstream, tmp_path: Any
) -> None:
    config = prompts_config(upstream, f"sqlite:///{tmp_path / 'store.db'}", guardrails=[PII])
    gw = gateway_factory(config)
    admin = AdminClient(gw, MASTER_KEY)
    admin.ok("POST", "/prompts", template("guarded", "Write to {{ topic }}.", guardrail="pii"), 201)
    admin.ok("POST", "/prompts", template("open", "Write to {{ topic }}."), 201)
    with make_client(gw) as client:
        rid = f"pg-{uuid.uuid4().hex[:10]}"
        call_prompt(client, "guarded", {"variables": {"topic": EMAIL}}, headers={"x-request-id": rid})
        assert _user_text(upstream, rid) == "Write to [EMAIL]."
        # The same model without the prompt's guard: nothing rewritten.
        rid = f"pg-{uuid.uuid4().hex[:10]}"
        call_prompt(client, "open", {"variables": {"topic": EMAIL}}, headers={"x-request-id": rid})
        assert _user_text(upstream, rid) == f"Write to {EMAIL}."
        # A block names the guard and never the value.
        with pytest.raises(openai.BadRequestError) as info:
            call_prompt(client, "guarded", {"variables": {"topic": "123-45-6789"}})
        body = info.value.body
        assert isinstance(body, dict) and body["code"] == "guardrail_blocked" and "pii" in body["message"]
        assert "123-45-6789" not in str(body)
    # A guardrail the config does not have: refused when published.
    status, error = admin.call("POST", "/prompts", template("typo", "Hi {{ topic }}.", guardrail="pi"))
    assert status == 400 and error["error"]["param"] == "guardrail"
