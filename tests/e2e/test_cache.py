"""The exact response cache (issue 19) through a real gatecore, with the official SDKs: hits and
misses for chat and messages, whole and streamed; what is never stored; the request's controls; and
isolation between teams."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .admin_client import AdminClient
from .anthropic_client import make_anthropic
from .conftest import make_client, new_request_id, wait_keys_loaded
from .gateway import MASTER_KEY, Gateway, GatewayFactory, running_gateway, standard_config, write_config
from .gemini_client import gemini_post
from .raw_http import request

CACHE = "x-gatecore-cache"


@pytest.fixture(scope="module")
def gw(
    upstream: MockUpstream, refused: RefusedPort, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    config = standard_config(upstream.base_url, refused.base_url)
    config["cache"] = {"enabled": True, "ttl_s": 600, "max_ttl_s": 3600}
    # A model with its own settings: cached per key rather than per team.
    config["models"].append(
        {
            "name": "gpt-per-key",
            "deployments": [{"provider": "up", "model": "upstream-model-1"}],
            "cache": {"scope": "key"},
        }
    )
    config["models"].append(
        {
            "name": "gpt-uncached",
            "deployments": [{"provider": "up", "model": "upstream-model-1"}],
            "cache": {"enabled": False},
        }
    )
    workdir = tmp_path_factory.mktemp("cache")
    path = write_config(config, workdir / "gatecore.yaml")
    with running_gateway(["--config", str(path)], workdir, config=config) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def client(gw: Gateway) -> Iterator[openai.OpenAI]:
    with make_client(gw) as c:
        yield c


def words() -> str:
    """A prompt no other test sends (the cache is shared by the module's tests)."""
    return f"tell me about {uuid.uuid4().hex}"


def chat(
    client: openai.OpenAI,
    text: str,
    *,
    model: str = "gpt-test",
    headers: dict[str, str] | None = None,
    **body: Any,
) -> tuple[str, dict[str, str], Any]:
    """One deterministic chat request: its x-request-id, the answer's headers and the answer."""
    rid = new_request_id()
    body.setdefault("temperature", 0)
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": text}],
        extra_headers={"x-request-id": rid, **(headers or {})},
        **body,
    )
    return rid, dict(raw.headers), raw.parse()


def chat_stream(
    client: openai.OpenAI, text: str, headers: dict[str, str] | None = None, **body: Any
) -> tuple[str, dict[str, str], list[Any]]:
    rid = new_request_id()
    with client.chat.completions.with_streaming_response.create(
        model="gpt-test",
        messages=[{"role": "user", "content": text}],
        temperature=0,
        stream=True,
        extra_headers={"x-request-id": rid, **(headers or {})},
        **body,
    ) as raw:
        chunks = list(raw.parse())
        return rid, dict(raw.headers), chunks


def test_chat_repeat_is_a_hit_without_upstream_call(client: openai.OpenAI, upstream: MockUpstream) -> None:
    text = words()
    rid1, head1, first = chat(client, text)
    assert head1[CACHE] == "miss"
    upstream.wait_for(rid1)
    rid2, head2, second = chat(client, text)
    assert head2[CACHE] == "hit"
    assert "x-gatecore-model" not in head2  # no deployment answered
    assert second.model_dump() == first.model_dump()  # the very answer, id included
    assert second.choices[0].message.content == f"mock: {text}"
    time.sleep(0.2)
    assert not upstream.received(rid2), "a hit must not reach the upstream"


def test_chat_stream_hit_replays_the_stream(client: openai.OpenAI, upstream: MockUpstream) -> None:
    text = words()
    _, head1, first = chat_stream(client, text)
    assert head1[CACHE] == "miss"
    rid2, head2, second = chat_stream(client, text)
    assert head2[CACHE] == "hit"
    assert head2["content-type"].startswith("text/event-stream")
    assert [c.model_dump() for c in second] == [c.model_dump() for c in first]
    assert "".join(c.choices[0].delta.content or "" for c in second) == f"mock: {text}"
    assert second[-1].choices[0].finish_reason == "stop"
    time.sleep(0.2)
    assert not upstream.received(rid2)
    # Streamed and whole answers are stored apart: the whole request is a miss of its own.
    _, head3, whole = chat(client, text)
    assert head3[CACHE] == "miss"
    assert whole.object == "chat.completion"


def test_a_hit_carries_the_timing_header_when_asked(client: openai.OpenAI) -> None:
    """`x-gatecore-debug: timing` (a key that may see it): a hit's breakdown ends with the cache
    lookup and spends nothing upstream; whole and streamed; never unasked."""
    ask = {"x-gatecore-debug": "timing"}
    for send in (chat, chat_stream):
        text = words()
        _, head1, _ = send(client, text, headers=ask)
        assert head1[CACHE] == "miss" and "x-gatecore-timing" in head1
        _, plain, _ = send(client, text)
        assert plain[CACHE] == "hit" and "x-gatecore-timing" not in plain
        _, head2, _ = send(client, text, headers=ask)
        assert head2[CACHE] == "hit"
        timing = {}
        for part in head2["x-gatecore-timing"].split(","):
            name, _, dur = part.strip().partition(";dur=")
            timing[name] = float(dur)
        names = list(timing)
        assert names[:2] == ["auth", "decode"] and names[-4:] == ["cache", "upstream", "relay", "total"]
        assert all(d >= 0 for d in timing.values())
        assert timing["upstream"] == 0  # no upstream was called
        assert sum(d for name, d in timing.items() if name != "total") <= timing["total"]


def test_key_order_and_whitespace_do_not_matter(gw: Gateway, client: openai.OpenAI) -> None:
    text = words()
    _, head, _ = chat(client, text, seed=7, temperature=0.7)  # a seed makes it deterministic too
    assert head[CACHE] == "miss"
    body = '{\n  "seed" : 7,"temperature":0.70, "messages" : [ {"content": %s, "role":"user"} ],"model":"gpt-test"}'
    raw = (body % json.dumps(text)).encode()
    headers = [("content-type", "application/json"), ("authorization", f"Bearer {MASTER_KEY}")]
    answer = request(gw.port, "POST", "/v1/chat/completions", raw, headers)
    assert answer.status == 200, answer.body
    assert answer.header(CACHE) == "hit"
    # Another sampling value is another key.
    _, head2, _ = chat(client, text, seed=8, temperature=0.7)
    assert head2[CACHE] == "miss"


def test_messages_whole_and_stream(gw: Gateway, upstream: MockUpstream) -> None:
    text = words()
    claude = make_anthropic(gw)
    kwargs: dict[str, Any] = {
        "model": "gpt-test",
        "max_tokens": 100,
        "extra_body": {"temperature": 0},  # this SDK version's create() has no temperature argument
        "messages": [{"role": "user", "content": text}],
    }
    first = claude.messages.with_raw_response.create(**kwargs)
    assert first.headers[CACHE] == "miss"
    rid = new_request_id()
    second = claude.messages.with_raw_response.create(**kwargs, extra_headers={"x-request-id": rid})
    assert second.headers[CACHE] == "hit"
    assert second.parse().model_dump() == first.parse().model_dump()
    assert second.parse().content[0].text == f"mock: {text}"
    # The OpenAI route's entry is not the Anthropic one's: each holds its own client's bytes.
    with make_client(gw) as openai_client:
        _, head, _ = chat(openai_client, text, max_tokens=100)
    assert head[CACHE] == "miss"

    def stream_once() -> tuple[str, list[str], str]:
        with claude.messages.with_streaming_response.create(**kwargs, stream=True) as raw:
            events = [event.type for event in raw.parse()]
            return raw.headers[CACHE], events, ""

    state1, events1, _ = stream_once()
    state2, events2, _ = stream_once()
    assert (state1, state2) == ("miss", "hit")
    assert events2 == events1
    assert events2[0] == "message_start" and events2[-1] == "message_stop"
    time.sleep(0.2)
    assert not upstream.received(rid)


def test_non_deterministic_requests_bypass(client: openai.OpenAI, upstream: MockUpstream) -> None:
    text = words()
    _, head1, _ = chat(client, text, temperature=0.5)
    rid, head2, _ = chat(client, text, temperature=0.5)
    assert (head1[CACHE], head2[CACHE]) == ("bypass", "bypass")
    upstream.wait_for(rid)


def test_cache_control_no_cache_and_no_store(client: openai.OpenAI, upstream: MockUpstream) -> None:
    text = words()
    _, head, _ = chat(client, text, headers={"cache-control": "no-store"})
    assert head[CACHE] == "miss"
    rid, head, _ = chat(client, text)
    assert head[CACHE] == "miss", "no-store: the answer was not kept"
    upstream.wait_for(rid)
    _, head, _ = chat(client, text)
    assert head[CACHE] == "hit"
    rid, head, _ = chat(client, text, headers={"cache-control": "No-Cache"})
    assert head[CACHE] == "bypass"
    upstream.wait_for(rid)  # no lookup: the upstream answered afresh


def test_ttl_header_expires_and_is_bounded(gw: Gateway, client: openai.OpenAI) -> None:
    text = words()
    _, head, _ = chat(client, text, headers={"x-gatecore-cache-ttl": "1"})
    assert head[CACHE] == "miss"
    _, head, _ = chat(client, text)
    assert head[CACHE] == "hit"
    time.sleep(1.2)
    _, head, _ = chat(client, text)
    assert head[CACHE] == "miss", "the entry outlived its TTL"
    for bad in ("0", "3601", "-5", "1.5", "x" * 5000):
        with pytest.raises(openai.BadRequestError) as caught:
            chat(client, words(), headers={"x-gatecore-cache-ttl": bad})
        assert caught.value.status_code == 400
        assert caught.value.code == "invalid_cache_ttl"


def test_cut_or_unterminated_stream_is_never_cached(client: openai.OpenAI, upstream: MockUpstream) -> None:
    for mock in ({"cut_after": 2, "chunks": 5}, {"no_done": True}, {"error_event_after": 2}):
        text = words()
        rids = [new_request_id(), new_request_id()]
        for rid in rids:
            # The SDK may or may not raise on a stream that ends early; what matters is the upstream.
            with contextlib.suppress(openai.APIError):
                chat_stream(client, text, headers={"x-request-id": rid}, extra_body={"mock": mock})
        upstream.wait_for(rids[1])  # the repeat went to the upstream again: nothing was stored
    text = words()
    for state in ("miss", "hit"):  # the same request, whole: stored
        _, head, _ = chat_stream(client, text, extra_body={"mock": {"chunks": 5}})
        assert head[CACHE] == state


def test_errors_and_tool_calls_are_not_cached(client: openai.OpenAI, upstream: MockUpstream) -> None:
    text = words()
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            chat(client, text, extra_body={"mock": {"status": 500}})
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    mock = {"tool_calls": [call], "finish_reason": "tool_calls"}
    _, head, _ = chat(client, text, extra_body={"mock": mock})
    rid, head2, answer = chat(client, text, extra_body={"mock": mock})
    assert (head[CACHE], head2[CACHE]) == ("miss", "miss")
    assert answer.choices[0].finish_reason == "tool_calls"
    upstream.wait_for(rid)


def test_uncached_model_has_no_cache_header(client: openai.OpenAI) -> None:
    _, head, _ = chat(client, words(), model="gpt-uncached")
    assert CACHE not in head


def test_teams_never_share_answers(gw: Gateway, upstream: MockUpstream) -> None:
    """The attack: team B sends team A's exact request (similarity 1.0) and must not get A's answer;
    a key without a team is its own namespace; a second key of A shares A's entries."""
    admin = AdminClient(gw, MASTER_KEY)
    keys: dict[str, str] = {}
    for team_name in ("cache-a", "cache-b"):
        admin.ok("POST", "/teams", {"name": team_name}, 201)
    owners: list[tuple[str, str | None]] = [
        ("a1", "cache-a"),
        ("a2", "cache-a"),
        ("b1", "cache-b"),
        ("lone", None),
    ]
    for name, team in owners:
        body = {"name": f"cache-{name}", **({"team": team} if team else {})}
        keys[name] = admin.ok("POST", "/keys", body, 201)["key"]
    wait_keys_loaded(gw, list(keys.values()))
    text = words()
    clients = {name: make_client(gw, key) for name, key in keys.items()}
    try:
        _, head, a_answer = chat(clients["a1"], text)
        assert head[CACHE] == "miss"
        _, head, again = chat(clients["a2"], text)
        assert head[CACHE] == "hit" and again.id == a_answer.id
        for other in ("b1", "lone"):
            rid, head, answer = chat(clients[other], text)
            assert head[CACHE] == "miss", other
            assert answer.id != a_answer.id
            upstream.wait_for(rid)
        # Per-key scope (models[].cache.scope): even a teammate does not see the entry.
        _, head, _ = chat(clients["a1"], text, model="gpt-per-key")
        assert head[CACHE] == "miss"
        _, head, _ = chat(clients["a2"], text, model="gpt-per-key")
        assert head[CACHE] == "miss"
        _, head, _ = chat(clients["a1"], text, model="gpt-per-key")
        assert head[CACHE] == "hit"
    finally:
        for c in clients.values():
            c.close()


def test_cache_config_is_checked(tmp_path: Path) -> None:
    from .gateway import run_cli

    config = {
        "cache": {
            "enabled": True,
            "scope": "org",
            "backend": "disk",
            "ttl_s": 0,
            "teams": {"red": {"scope": "org", "ttl_s": -1}},
        },
        "models": [],
    }
    path = write_config(config, tmp_path / "bad.yaml")
    result = run_cli(["check", "--config", str(path)])
    assert result.returncode != 0
    for reason in (
        "cache.scope",
        "cache.backend",
        "cache.ttl_s",
        "cache.teams.red.scope",
        "cache.teams.red.ttl_s",
    ):
        assert reason in result.stdout + result.stderr, reason


def test_completions_are_cached_too(client: openai.OpenAI, upstream: MockUpstream) -> None:
    prompt = words()
    heads = []
    for _ in range(2):
        rid = new_request_id()
        raw = client.completions.with_raw_response.create(
            model="gpt-test", prompt=prompt, temperature=0, extra_headers={"x-request-id": rid}
        )
        heads.append(raw.headers[CACHE])
        assert raw.parse().choices[0].text == f"mock: {prompt}"
    assert heads == ["miss", "hit"]
    time.sleep(0.2)
    assert not upstream.received(rid)


def test_gemini_whole_and_both_stream_shapes(gw: Gateway, upstream: MockUpstream) -> None:
    """A Gemini client's answers are cached in its own shape: whole, SSE and the JSON-array stream
    (one request body, told apart by the query) are three entries, each replayed byte for byte."""
    body = {
        "contents": [{"role": "user", "parts": [{"text": words()}]}],
        "generationConfig": {"temperature": 0},
    }
    for path in (
        "/v1beta/models/gpt-test:generateContent",
        "/v1beta/models/gpt-test:streamGenerateContent?alt=sse",
        "/v1beta/models/gpt-test:streamGenerateContent",
    ):
        first, second = gemini_post(gw, path, body), gemini_post(gw, path, body)
        assert (first[0], second[0]) == (200, 200), (path, first[2][:300])
        assert (first[1][CACHE], second[1][CACHE]) == ("miss", "hit"), path
        assert second[2] == first[2]
        assert second[1]["content-type"] == first[1]["content-type"]


def test_namespace_header_narrows_within_the_key(gw: Gateway) -> None:
    admin = AdminClient(gw, MASTER_KEY)
    admin.ok("POST", "/teams", {"name": "ns-team"}, 201)
    keys = [admin.ok("POST", "/keys", {"name": f"ns-{i}", "team": "ns-team"}, 201)["key"] for i in range(2)]
    wait_keys_loaded(gw, keys)
    text = words()
    with make_client(gw, keys[0]) as first, make_client(gw, keys[1]) as second:
        own = {"x-gatecore-cache-namespace": "key"}
        assert chat(first, text, headers=own)[1][CACHE] == "miss"
        assert chat(second, text)[1][CACHE] == "miss", "the entry is in the first key's own namespace"
        assert chat(first, text, headers=own)[1][CACHE] == "hit"
        assert chat(second, text, headers={"x-gatecore-cache-namespace": "team"})[1][CACHE] == "hit"
        # Never wider than the key may use, nor another namespace by name.
        for bad in ("global", f"team:{uuid.uuid4().hex}", "other", "x" * 5000):
            with pytest.raises(openai.BadRequestError) as caught:
                chat(first, words(), headers={"x-gatecore-cache-namespace": bad})
            assert caught.value.code == "invalid_cache_namespace"


def test_a_paced_stream_hit_keeps_the_original_gaps(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    """`cache.replay_pacing`: a streamed hit is sent with the gaps the original stream had (for
    clients and benchmarks that measure timing), not all at once."""
    config = standard_config(upstream.base_url, refused.base_url)
    config["cache"] = {"enabled": True, "replay_pacing": True}
    paced_gw = gateway_factory(config)
    steer = {"mock": {"chunks": 5, "gap_ms": 80}}  # four gaps of 80 ms between the content writes
    text = words()
    with make_client(paced_gw) as paced:
        _, head1, first = chat_stream(paced, text, extra_body=steer)
        started = time.monotonic()
        _, head2, second = chat_stream(paced, text, extra_body=steer)
        paced_s = time.monotonic() - started
    assert (head1[CACHE], head2[CACHE]) == ("miss", "hit")
    assert [c.model_dump() for c in second] == [c.model_dump() for c in first]
    assert paced_s >= 0.3, paced_s  # a sleep is never shorter, however loaded the machine


def test_team_settings_over_the_model(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    """`cache.teams`: a team cached per key shares nothing between its keys (and a key cannot widen
    that with x-gatecore-cache-namespace); a team that opted out is never cached; other teams keep
    the section's per-team sharing."""
    config = standard_config(upstream.base_url, refused.base_url)
    config["cache"] = {
        "enabled": True,
        "teams": {"private": {"scope": "key"}, "optout": {"enabled": False}},
    }
    gw = gateway_factory(config)
    admin = AdminClient(gw, MASTER_KEY)
    keys: dict[str, str] = {}
    for team in ("private", "optout", "shared"):
        admin.ok("POST", "/teams", {"name": team}, 201)
        for n in (1, 2):
            keys[f"{team}{n}"] = admin.ok("POST", "/keys", {"name": f"{team}-{n}", "team": team}, 201)["key"]
    wait_keys_loaded(gw, list(keys.values()))
    clients = {name: make_client(gw, key) for name, key in keys.items()}
    try:
        text = words()
        assert chat(clients["shared1"], text)[1][CACHE] == "miss"
        assert chat(clients["shared2"], text)[1][CACHE] == "hit"  # the section's scope: the team
        assert chat(clients["private1"], text)[1][CACHE] == "miss"
        assert chat(clients["private2"], text)[1][CACHE] == "miss"  # per key: a teammate misses
        assert chat(clients["private1"], text)[1][CACHE] == "hit"
        with pytest.raises(openai.BadRequestError) as info:
            chat(clients["private2"], text, headers={"x-gatecore-cache-namespace": "team"})
        assert isinstance(info.value.body, dict) and info.value.body["code"] == "invalid_cache_namespace"
        for _ in range(2):
            assert chat(clients["optout1"], text)[1][CACHE] == "bypass"
    finally:
        for c in clients.values():
            c.close()
