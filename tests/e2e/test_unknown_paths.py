"""Requests to paths gatecore does not serve leave a trace: an access-log line and a count in
`/metrics` under their API family, never the raw path as a label; `/v1/messages` is labelled
`messages`, not `chat`."""

from __future__ import annotations

import http.client
import json
import time

from ..upstreams.openai_mock import MockUpstream
from .anthropic_client import post_raw
from .conftest import new_request_id
from .gateway import MASTER_KEY, Gateway
from .prometheus_text import Exposition, parse
from .test_metrics import scrape

REQUESTS = "gatecore_requests_total"


def send(gw: Gateway, method: str, path: str, rid: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        headers = {
            "x-request-id": rid,
            "authorization": f"Bearer {MASTER_KEY}",
            "content-type": "application/json",
        }
        conn.request(method, path, b'{"model": "gpt-test", "input": "hi"}', headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def counted(gw: Gateway, endpoint: str, at_least: float) -> Exposition:
    """The exposition once `endpoint` counts at least `at_least` requests (bounded wait)."""
    deadline = time.monotonic() + 10
    while True:
        status, _, text = scrape(gw, MASTER_KEY)
        assert status == 200
        exposition = parse(text)
        if exposition.total(REQUESTS, endpoint=endpoint) >= at_least or time.monotonic() > deadline:
            return exposition
        time.sleep(0.05)


def test_unknown_paths_are_logged_and_counted_by_family(gateway: Gateway) -> None:
    before = parse(scrape(gateway, MASTER_KEY)[2])
    paths = {
        "/v1/realtime/sessions": "unrouted:realtime",
        "/v1beta/models/gemini-2.5-pro:embedContent": "unrouted:gemini",
        "/v1beta/files": "unrouted:gemini",
        "/v1/audio/translations": "unrouted:audio",
        "/v1/no-such-thing-" + "x" * 50: "unrouted:other_v1",
        "/wp-login.php": "unrouted:other",
    }
    for path, endpoint in paths.items():
        rid = new_request_id()
        status, headers, body = send(gateway, "POST", path, rid)
        assert status == 404
        assert headers["x-request-id"] == rid
        error = json.loads(body)["error"]
        if path.startswith("/v1beta/"):  # in Gemini's error shape
            assert (error["code"], error["status"]) == (404, "NOT_FOUND")
        else:
            assert error["code"] == "not_found"
        line = gateway.wait_access_log(rid)
        assert (line["endpoint"], line["status"], line["error"]) == (endpoint, 404, "not_found")
    for endpoint in set(paths.values()):
        wanted = before.total(REQUESTS, endpoint=endpoint) + list(paths.values()).count(endpoint)
        exposition = counted(gateway, endpoint, wanted)
        assert exposition.total(REQUESTS, endpoint=endpoint, status_class="4xx") >= wanted
    # Many random paths: one series per family, never the path itself.
    for i in range(30):
        send(gateway, "GET", f"/v1/random-{i}", new_request_id())
    exposition = counted(
        gateway, "unrouted:other_v1", before.total(REQUESTS, endpoint="unrouted:other_v1") + 31
    )
    endpoints = exposition.label_values("endpoint")
    assert not any("random" in e or "/" in e for e in endpoints), endpoints
    assert {e for e in endpoints if e.startswith("unrouted:")} <= {
        "unrouted:responses", "unrouted:gemini", "unrouted:audio", "unrouted:images", "unrouted:moderations",
        "unrouted:rerank", "unrouted:files", "unrouted:batches", "unrouted:realtime", "unrouted:other_v1",
        "unrouted:other",
    }  # fmt: skip


def test_messages_is_labelled_messages(gateway: Gateway, upstream: MockUpstream) -> None:
    earlier = parse(scrape(gateway, MASTER_KEY)[2])
    before = earlier.total(REQUESTS, endpoint="messages")
    # The shared gateway served other tests' messages requests (other models, errors) before this one.
    before_ok = earlier.total(REQUESTS, endpoint="messages", model="gpt-test", status_class="2xx")
    rid = new_request_id()
    body = {"model": "gpt-test", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    code, _, _ = post_raw(gateway, body, {"x-request-id": rid})
    assert code == 200
    assert upstream.wait_for(rid).path == "/v1/chat/completions"  # served as chat upstream
    assert gateway.wait_access_log(rid)["endpoint"] == "messages"
    exposition = counted(gateway, "messages", before + 1)
    assert (
        exposition.total(REQUESTS, endpoint="messages", model="gpt-test", status_class="2xx") >= before_ok + 1
    )
