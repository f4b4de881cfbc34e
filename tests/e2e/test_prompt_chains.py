"""Chains of published prompts (issue 21): a 3-step chain with a JSON hand-off, a skipped step and a
streamed last step through the openai SDK; every step its own ledger row tied to the pipeline
request; a failed step named; loops and out-of-bounds chains refused at publish time."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .admin_client import AdminClient
from .conftest import make_client
from .gateway import MASTER_KEY, Gateway, GatewayFactory
from .ledger_store import LedgerStore
from .prompt_helpers import call_prompt, prompts_config, stream_prompt


def _template(name: str, content: str, props: dict[str, Any], model: str = "gpt-a") -> dict[str, Any]:
    return {
        "name": name,
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "variables": {"type": "object", "properties": props, "required": list(props)},
    }


STRING = {"type": "string"}
CHAIN = {
    "name": "pipe",
    "description": "classify, describe, shout",
    "variables": {
        "type": "object",
        "properties": {"text": STRING, "flag": {"type": "boolean", "default": False}},
        "required": ["text"],
    },
    "steps": [
        {"name": "a", "prompt": "classify", "variables": {"text": "{{ vars.text }}"}},
        {
            "name": "b",
            "prompt": "describe",
            "variables": {"kind": "{{ steps.a.output.kind }}", "score": "{{ steps.a.output.score }}"},
        },
        {"name": "maybe", "prompt": "shout", "variables": {"text": "never"}, "if": "{{ vars.flag }}"},
        {"name": "c", "prompt": "shout", "variables": {"text": "{{ steps.b.output }}"}},
    ],
}


@pytest.fixture
def silent() -> Iterator[str]:
    """An upstream that takes connections (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.fixture
def gw(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, silent: str, tmp_path: Any
) -> Gateway:
    config = prompts_config(upstream, f"sqlite:///{tmp_path / 'store.db'}")
    config["providers"] += [
        {"name": "down", "kind": "openai", "base_url": refused.base_url, "api_key": "x"},
        {"name": "silent", "kind": "openai", "base_url": silent, "api_key": "x"},
    ]
    config["models"] += [
        {"name": "dead", "deployments": [{"provider": "down", "model": "dead"}], "retries": {"count": 0}},
        {"name": "slow", "deployments": [{"provider": "silent", "model": "slow"}]},
    ]
    gateway = gateway_factory(config)
    admin = AdminClient(gateway, MASTER_KEY)
    admin.ok(
        "POST", "/prompts", _template("classify", '{"kind": "{{ text }}", "score": 7}', {"text": STRING}), 201
    )
    admin.ok(
        "POST",
        "/prompts",
        _template(
            "describe",
            "Describe a {{ kind }} scored {{ score }}",
            {"kind": STRING, "score": {"type": "integer"}},
        ),
        201,
    )
    admin.ok("POST", "/prompts", _template("shout", "LOUD: {{ text }}", {"text": STRING}), 201)
    admin.ok("POST", "/prompts", _template("broken", "{{ text }}", {"text": STRING}, model="dead"), 201)
    admin.ok("POST", "/prompts", _template("stalls", "{{ text }}", {"text": STRING}, model="slow"), 201)
    return gateway


def test_three_steps_json_hand_off_streamed_last_step(
    gw: Gateway, upstream: MockUpstream, tmp_path: Any
) -> None:
    admin = AdminClient(gw, MASTER_KEY)
    created = admin.ok("POST", "/prompts", CHAIN, 201)
    assert created["kind"] == "chain" and created["version"] == 1
    rid = f"chain-{uuid.uuid4().hex[:10]}"
    with make_client(gw, default_headers={"x-request-id": rid}) as client:
        chunks = stream_prompt(client, "pipe", {"variables": {"text": "owl"}})
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "mock: LOUD: mock: Describe a owl scored 7"
    assert len(chunks) > 2  # streamed event by event
    sent = [r.body_json for r in upstream.requests if r.headers.get("x-request-id") == rid]
    assert [m["messages"][0]["content"] for m in sent] == [
        '{"kind": "owl", "score": 7}',
        "Describe a owl scored 7",
        "LOUD: mock: Describe a owl scored 7",
    ]
    assert [bool(m.get("stream")) for m in sent] == [False, False, True]
    # Each step is a row of its own, naming its prompt and the pipeline request; the last step is
    # the pipeline request's own row.
    rows = [
        r
        for r in LedgerStore(f"sqlite:///{tmp_path / 'store.db'}").wait_rows({rid})
        if r["request_id"] == rid
    ]
    deadline_rows = sorted((r["prompt_name"], r["parent_request_id"], r["streamed"]) for r in rows)
    assert deadline_rows == [("classify", rid, False), ("describe", rid, False), ("pipe", None, True)]
    assert all(r["status"] == 200 and r["output_tokens"] > 0 for r in rows)
    # The condition: with the flag, the skipped step runs (and its row appears).
    with make_client(gw) as client:
        answer, version = call_prompt(client, "pipe", {"variables": {"text": "cat", "flag": True}})
    assert version == 1 and answer.choices[0].message.content == "mock: LOUD: mock: Describe a cat scored 7"


def test_failed_step_is_named(gw: Gateway) -> None:
    admin = AdminClient(gw, MASTER_KEY)
    chain = {
        "name": "fails",
        "variables": {"type": "object", "properties": {"text": STRING}},
        "steps": [
            {"name": "first", "prompt": "classify", "variables": {"text": "{{ vars.text }}"}},
            {"name": "second", "prompt": "broken", "variables": {"text": "{{ steps.first.output }}"}},
            {"name": "third", "prompt": "shout", "variables": {"text": "{{ steps.second.output }}"}},
        ],
    }
    admin.ok("POST", "/prompts", chain, 201)
    with make_client(gw) as client, pytest.raises(openai.APIStatusError) as failed:
        call_prompt(client, "fails", {"variables": {"text": "x"}})
    assert failed.value.status_code == 502
    body: Any = failed.value.body
    assert body["code"] == "step_failed" and body["param"] == "steps.second"
    assert "Step 'second' failed" in body["message"]


def test_chain_time_bound(gw: Gateway) -> None:
    admin = AdminClient(gw, MASTER_KEY)
    chain = {
        "name": "slowpoke",
        "timeout_s": 0.5,
        "variables": {"type": "object", "properties": {"text": STRING}},
        "steps": [
            {"name": "wait", "prompt": "stalls", "variables": {"text": "{{ vars.text }}"}},
            {"name": "never", "prompt": "shout", "variables": {"text": "{{ steps.wait.output }}"}},
        ],
    }
    admin.ok("POST", "/prompts", chain, 201)
    started = time.monotonic()
    with make_client(gw) as client, pytest.raises(openai.APIStatusError) as failed:
        call_prompt(client, "slowpoke", {"variables": {"text": "x"}})
    assert failed.value.status_code == 504 and time.monotonic() - started < 5
    body: Any = failed.value.body
    assert body["code"] == "step_failed" and body["param"] == "steps.wait"


def test_chains_refused_at_publish(gw: Gateway) -> None:
    admin = AdminClient(gw, MASTER_KEY)
    admin.ok("POST", "/prompts", CHAIN, 201)

    def steps(*items: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": "bad",
            "variables": {"type": "object", "properties": {"text": STRING}},
            "steps": list(items),
        }

    one = {"name": "a", "prompt": "shout", "variables": {"text": "x"}}
    cases = [
        # A step that reads a later step's output: the loop cannot be built.
        steps(
            {"name": "a", "prompt": "shout", "variables": {"text": "{{ steps.b.output }}"}},
            {**one, "name": "b"},
        ),
        steps({"name": "a", "prompt": "shout", "variables": {"text": "{{ steps.a.output }}"}}),
        steps({"name": "a", "prompt": "pipe"}),  # a chain as a step
        steps({"name": "a", "prompt": "bad"}),  # the chain itself
        steps(*({**one, "name": f"s{i}"} for i in range(9))),  # more than 8 steps
        steps({**one, "if": "{{ vars.text }}"}),  # a condition on the last step
        steps({"name": "a", "prompt": "no-such-prompt"}),
        steps({"name": "a", "prompt": "shout", "variables": {"text": "{{ vars.undeclared }}"}}),
        {**steps(one), "timeout_s": 10_000},
        {**steps(one), "model": "gpt-a"},
    ]
    for case in cases:
        status, body = admin.call("POST", "/prompts", case)
        assert status in (400, 422), (case, status, body)
    assert "bad" not in {p["name"] for p in admin.ok("GET", "/prompts")["data"]}


def test_client_gone_during_a_step_aborts_it(gw: Gateway, tmp_path: Any) -> None:
    admin = AdminClient(gw, MASTER_KEY)
    chain = {
        "name": "abandoned",
        "timeout_s": 60,
        "variables": {"type": "object", "properties": {"text": STRING}},
        "steps": [
            {"name": "wait", "prompt": "stalls", "variables": {"text": "{{ vars.text }}"}},
            {"name": "never", "prompt": "shout", "variables": {"text": "{{ steps.wait.output }}"}},
        ],
    }
    admin.ok("POST", "/prompts", chain, 201)
    rid = f"gone-{uuid.uuid4().hex[:8]}"
    with make_client(gw, timeout=1.0) as client, pytest.raises(openai.APITimeoutError):
        call_prompt(client, "abandoned", {"variables": {"text": "x"}}, headers={"x-request-id": rid})
    # The step's row and the pipeline's are written once the step was aborted, long before the
    # chain's 60 s or the upstream's timeouts.
    rows = LedgerStore(f"sqlite:///{tmp_path / 'store.db'}").wait_rows({rid}, timeout=10)
    mine = sorted((r["prompt_name"], r["status"], r["client_gone"]) for r in rows if r["request_id"] == rid)
    assert mine == [("abandoned", 499, True), ("stalls", 499, True)]
