"""Body logging end to end: keys (or teams) with `log_bodies: true` get their request and answer bodies
into their access-log lines, size-capped, their own key scrubbed; everyone else's lines carry no body,
and no key ever appears in the server's output."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ..upstreams.openai_mock import MockUpstream
from .admin_client import AdminClient
from .anthropic_client import make_anthropic
from .conftest import make_client, wait_keys_loaded
from .gateway import MASTER_KEY, Gateway, GatewayFactory

CAP = 4096


@pytest.fixture
def logged(
    gateway_factory: GatewayFactory, upstream: MockUpstream, tmp_path: Any
) -> Iterator[tuple[Gateway, dict[str, str]]]:
    config = {
        "server": {"access_log": True, "body_log_max_bytes": CAP},
        "providers": [
            {"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "${UP_KEY}"}
        ],
        "models": [{"name": "gpt-log", "deployments": [{"provider": "up", "model": "up-log"}]}],
        "auth": {"master_key": MASTER_KEY, "key_hash_secret": "body-log-hash-secret-0123456789"},
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
    }
    gw = gateway_factory(config)
    admin = AdminClient(gw, MASTER_KEY)
    admin.ok("POST", "/teams", {"name": "loud", "metadata": {"log_bodies": True}}, 201)
    admin.ok("POST", "/teams", {"name": "quiet"}, 201)
    specs: dict[str, dict[str, Any]] = {
        "team-opted": {"team": "loud"},
        "key-opted": {"metadata": {"log_bodies": True}},
        "quiet": {"team": "quiet"},
        "opted-out": {"metadata": {"log_bodies": False}},
    }
    keys = {
        name: admin.ok("POST", "/keys", {"name": name, **spec}, 201)["key"] for name, spec in specs.items()
    }
    wait_keys_loaded(gw, list(keys.values()))
    yield gw, keys
    admin.close()


def _chat(gw: Gateway, key: str, marker: str, stream: bool) -> str:
    rid = f"body-{uuid.uuid4().hex[:10]}"
    content = f"{marker} my key is {key} ok"
    with make_client(gw, key) as client:
        answer = client.chat.completions.create(
            model="gpt-log",
            messages=[{"role": "user", "content": content}],
            stream=stream,
            extra_headers={"x-request-id": rid},
            extra_body={"mock": {"chunks": 3}} if stream else None,
        )
        if stream:
            list(answer)
    return rid


def _post(gw: Gateway, key: str, body: bytes, rid: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20)
    try:
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json", "x-request-id": rid}
        conn.request("POST", "/v1/chat/completions", body, headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_only_opted_in_keys_bodies_are_logged_and_keys_never_are(
    logged: tuple[Gateway, dict[str, str]],
) -> None:
    gw, keys = logged
    sent: dict[str, tuple[str, str, bool]] = {}  # rid → key name, marker, streamed
    for name, key in keys.items():
        for stream in (False, True):
            marker = f"marker-{name}-{'s' if stream else 'w'}-{uuid.uuid4().hex[:6]}"
            sent[_chat(gw, key, marker, stream)] = (name, marker, stream)
    anthropic_rid = f"body-anthropic-{uuid.uuid4().hex[:8]}"
    with (
        make_anthropic(gw, keys["team-opted"]) as client,
        client.messages.stream(
            model="gpt-log",
            max_tokens=20,
            messages=[{"role": "user", "content": "anthropic-marker-1"}],
            extra_headers={"x-request-id": anthropic_rid},
        ) as events,
    ):
        events.until_done()

    for rid, (name, marker, stream) in sent.items():
        line = gw.wait_access_log(rid)
        if name in ("team-opted", "key-opted"):
            request, response = line["request_body"], line["response_body"]
            assert marker in request and "my key is [key] ok" in request, name
            assert not line["request_body_truncated"] and not line["response_body_truncated"]
            if stream:
                assert response.startswith("data: ") and response.rstrip().endswith("data: [DONE]"), name
                assert "tok0" in response and "tok2" in response
            else:  # the mock echoes the prompt: the answer holds the key too, scrubbed the same way
                assert (
                    json.loads(response)["choices"][0]["message"]["content"]
                    == f"mock: {marker} my key is [key] ok"
                )
        else:
            assert not {"request_body", "response_body"} & set(line), name
    anthropic_line = gw.wait_access_log(anthropic_rid)
    assert "anthropic-marker-1" in anthropic_line["request_body"]
    assert "event: message_start" in anthropic_line["response_body"]  # the client's own API shape

    output = gw.output()
    for name, _, _ in sent.values():
        if name in ("quiet", "opted-out"):
            assert not any(m in output for n, m, _ in sent.values() if n == name), name
    for key in (*keys.values(), MASTER_KEY):
        assert key not in output


def test_bodies_are_cut_at_the_cap_and_a_key_across_the_cut_is_still_scrubbed(
    logged: tuple[Gateway, dict[str, str]],
) -> None:
    gw, keys = logged
    key = keys["key-opted"]
    head = b'{"model":"gpt-log","messages":[{"role":"user","content":"'
    # The key starts 20 bytes before the cut: its first 20 characters would be logged if the cut came
    # before the scrub.
    padding = b"p" * (CAP - 20 - len(head))
    body = head + padding + key.encode() + b' and more text after it"}]}'
    rid = f"body-cut-{uuid.uuid4().hex[:8]}"
    assert _post(gw, key, body, rid) == 200
    line = gw.wait_access_log(rid)
    request = line["request_body"]
    assert line["request_body_truncated"] is True and len(request.encode()) <= CAP
    assert request.startswith(head.decode() + "pppp") and key[:20] not in request
    # The answer echoes the prompt: cut too, and the key in it scrubbed as well.
    assert line["response_body_truncated"] is True and len(line["response_body"].encode()) <= CAP
    assert "mock: pppp" in line["response_body"] and key[:20] not in line["response_body"]
    assert key not in gw.output()
    # Multi-byte characters are never cut in half.
    rid = f"body-utf8-{uuid.uuid4().hex[:8]}"
    text = "é" * CAP
    assert (
        _post(
            gw,
            key,
            json.dumps(
                {"model": "gpt-log", "messages": [{"role": "user", "content": text}]}, ensure_ascii=False
            ).encode(),
            rid,
        )
        == 200
    )
    line = gw.wait_access_log(rid)
    assert line["request_body_truncated"] and line["response_body_truncated"]
    assert line["request_body"].endswith("é") and len(line["request_body"].encode()) <= CAP
    assert "\ufffd" not in line["request_body"] + line["response_body"]
