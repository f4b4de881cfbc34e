"""External guardrails through the HTTP server: a webhook guard (the documented JSON contract) on a
loopback server, its verdicts (allow, block, flag, modify) and its fail modes when it is slow or
down; a plugin guard loaded from the `gatecore.guardrails` entry point of an installed package;
custom patterns and a deny-list."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from aiohttp import web

from ..upstreams.mock_server import MockServer, RecordedRequest
from ..upstreams.openai_mock import MockUpstream, RefusedPort
from . import raw_http
from .conftest import make_client, new_request_id
from .gateway import (
    MASTER_KEY,
    REPO_ROOT,
    Gateway,
    GatewayFactory,
    running_gateway,
    standard_config,
    write_config,
)

PACKAGE = REPO_ROOT / "tests" / "plugins" / "gatecore_keyword_guard"


class GuardHook(MockServer):
    """A webhook guard: blocks texts saying `forbidden`, flags `flagme`, upper-cases `shout`, sleeps
    on `slow` (past any guard's timeout), answers 500 on `crash`; records every call."""

    thread_name = "guard-hook"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/check", self.check)
        app.router.add_post("/v1/moderations", self.moderate)
        app.router.add_post("/v1/chat/completions", self.classify)

    async def classify(self, request: web.Request) -> web.Response:
        """A Llama-Guard-style safety model behind OpenAI chat completions: `kill` is S1, `hateful` S10."""
        doc = await request.json()
        text = doc["messages"][-1]["content"]
        verdict = "unsafe\nS1" if "kill" in text else "unsafe\nS10" if "hateful" in text else "safe"
        return web.json_response({
            "id": "chatcmpl-guard", "object": "chat.completion", "created": 1, "model": doc["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": verdict}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        })  # fmt: skip

    async def moderate(self, request: web.Request) -> web.Response:
        """OpenAI's /v1/moderations shape: `kill` is violence, `hateful` is hate."""
        body = await request.read()
        doc = json.loads(body)
        recorded = RecordedRequest(
            "POST", "/v1/moderations", "", {k.lower(): v for k, v in request.headers.items()}, body, doc,
            asyncio.get_running_loop().time(),
        )  # fmt: skip
        with self._cond:
            self._requests.append(recorded)
            self._cond.notify_all()
        results = []
        for text in doc["input"]:
            categories = {"violence": "kill" in text, "hate": "hateful" in text, "sexual": False}
            results.append({"flagged": any(categories.values()), "categories": categories,
                            "category_scores": {k: float(v) for k, v in categories.items()}})  # fmt: skip
        return web.json_response({"id": "modr-1", "model": doc.get("model"), "results": results})

    async def check(self, request: web.Request) -> web.Response:
        body = await request.read()
        doc = json.loads(body)
        recorded = RecordedRequest(
            "POST", "/check", "", dict(request.headers), body, doc, asyncio.get_running_loop().time()
        )
        with self._cond:
            self._requests.append(recorded)
            self._cond.notify_all()
        joined = " ".join(doc["texts"])
        if "slow" in joined:
            await asyncio.sleep(3)
        if "crash" in joined:
            return web.Response(status=500, text="boom")
        if "forbidden" in joined:
            return web.json_response({"action": "block"})
        if "flagme" in joined:
            return web.json_response({"action": "flag"})
        if "shout" in joined:
            return web.json_response({"action": "modify", "texts": [t.upper() for t in doc["texts"]]})
        return web.json_response({"action": "allow"})


@pytest.fixture(scope="module")
def hook() -> Iterator[GuardHook]:
    with GuardHook() as server:
        yield server


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    target = tmp_path_factory.mktemp("guard-plugins")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(PACKAGE)],
        check=True,
        timeout=120,
        env={**os.environ, "PIP_REQUIRE_VIRTUALENV": "0"},
    )  # fmt: skip
    return str(target)


@pytest.fixture(scope="module")
def gw(
    upstream: MockUpstream,
    refused: RefusedPort,
    hook: GuardHook,
    plugin_path: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    config = standard_config(upstream.base_url, refused.base_url)
    base = config["models"][0]
    url = f"{hook.origin}/check"
    config["guardrails"] = [
        {"name": "hook", "kind": "webhook", "url": url, "timeout_s": 0.5, "on_error": "allow"},
        {"name": "strict", "kind": "webhook", "url": url, "timeout_s": 0.5, "on_error": "block"},
        {"name": "hook-out", "kind": "webhook", "url": url, "timeout_s": 0.5, "on_error": "block",
         "apply_to": ["output"]},
        {"name": "gone", "kind": "webhook", "url": refused.base_url + "/check", "on_error": "block"},
        {"name": "words", "kind": "plugin", "use": "keyword_guard",
         "options": {"block": ["project-x"], "replace": {"colour": "color"}}},
        {"name": "words-strict", "kind": "plugin", "use": "keyword_guard", "on_error": "block"},
        {"name": "mod", "kind": "moderation", "url": f"{hook.origin}/v1/moderations",
         "model": "omni-moderation-latest", "api_key": "sk-mod-secret", "categories": ["violence"],
         "on_error": "block"},
        {"name": "mod-out", "kind": "moderation", "url": f"{hook.origin}/v1/moderations",
         "categories": ["violence"], "on_error": "block", "apply_to": ["output"]},
        {"name": "house", "kind": "pii", "entities": {},
         "custom": [{"name": "employee_id", "pattern": r"EMP-\d{6}", "action": "redact"}],
         "deny_list": ["Bluebird", "acme corp"], "deny_action": "block"},
    ]  # fmt: skip
    config["models"] += [
        {**base, "name": "m-hook", "guardrails": ["hook"]},
        {**base, "name": "m-strict", "guardrails": ["strict"]},
        {**base, "name": "m-out", "guardrails": ["hook-out"]},
        {**base, "name": "m-gone", "guardrails": ["gone"]},
        {**base, "name": "m-words", "guardrails": ["words"]},
        {**base, "name": "m-words-strict", "guardrails": ["words-strict"]},
        {**base, "name": "m-mod", "guardrails": ["mod"]},
        {**base, "name": "m-house", "guardrails": ["house"]},
        {**base, "name": "m-mod-out", "guardrails": ["mod-out"]},
    ]
    workdir = tmp_path_factory.mktemp("guard-hooks")
    path = write_config(config, workdir / "gatecore.yaml")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [plugin_path, os.environ.get("PYTHONPATH")]))}
    with running_gateway(["--config", str(path)], workdir, config=config, env=env) as gateway:
        yield gateway


@pytest.fixture
def client(gw: Gateway) -> Iterator[openai.OpenAI]:
    with make_client(gw) as c:
        yield c


def ask(client: openai.OpenAI, model: str, text: str, rid: str | None = None) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": text}],
        extra_headers={"x-request-id": rid or new_request_id()},
    )


def blocked(client: openai.OpenAI, model: str, text: str) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, model, text)
    assert caught.value.code == "guardrail_blocked"
    return caught.value


def test_webhook_contract_and_verdicts(
    client: openai.OpenAI, hook: GuardHook, upstream: MockUpstream
) -> None:
    rid = new_request_id()
    answer = ask(client, "m-hook", "hello there", rid)
    assert answer.parse().choices[0].message.content == "mock: hello there"
    call = hook.find(lambda r: r.body_json["request_id"] == rid and r.body_json["side"] == "input").body_json
    assert call == {
        "guardrail": "hook",
        "side": "input",
        "model": "m-hook",
        "request_id": rid,
        "texts": ["hello there"],
    }

    error = blocked(client, "m-hook", "a forbidden thing")
    assert "'hook'" in error.message and "forbidden" not in error.message

    assert ask(client, "m-hook", "flagme please").headers.get("x-gatecore-guardrail") == "hook"

    rid = new_request_id()
    shouted = ask(client, "m-hook", "shout this", rid)
    assert upstream.wait_for(rid).body_json["messages"][0]["content"] == "SHOUT THIS"
    assert shouted.parse().choices[0].message.content == "mock: SHOUT THIS"


def test_webhook_checks_whole_answers_before_release(client: openai.OpenAI, hook: GuardHook) -> None:
    rid = new_request_id()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="m-out",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-request-id": rid},
            extra_body={"mock": {"content": "a forbidden answer"}},
        )
    assert caught.value.code == "guardrail_blocked" and "'hook-out'" in caught.value.message
    assert "forbidden" not in str(caught.value.body)
    calls = [r.body_json for r in hook.requests if r.body_json.get("request_id") == rid]
    assert [(c["side"], c["texts"]) for c in calls] == [("output", ["a forbidden answer"])]  # output only
    # A hook too slow for its timeout, with on_error block: the answer is refused.
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="m-out",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"mock": {"content": "slow"}},
        )
    assert "could not check this answer" in caught.value.message


def test_moderation_checks_answers(client: openai.OpenAI, hook: GuardHook) -> None:
    rid = new_request_id()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="m-mod-out",
            messages=[{"role": "user", "content": "how do I stop it"}],
            extra_headers={"x-request-id": rid},
            extra_body={"mock": {"content": "kill the process"}},
        )
    assert caught.value.code == "guardrail_blocked" and "'mod-out'" in caught.value.message
    assert "kill" not in str(caught.value.body)
    fine = client.chat.completions.create(
        model="m-mod-out",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"mock": {"content": "ok"}},
    )
    assert fine.choices[0].message.content == "ok"


def _stream(gw: Gateway, content: str, rid: str) -> list[bytes]:
    body = {"model": "m-out", "stream": True, "messages": [{"role": "user", "content": "hi"}],
            "mock": {"content": content, "gap_ms": 1}}  # fmt: skip
    headers = {
        "authorization": f"Bearer {MASTER_KEY}",
        "content-type": "application/json",
        "x-request-id": rid,
    }
    result = raw_http.read_stream(gw.port, "/v1/chat/completions", json.dumps(body).encode(), headers)
    assert result.status == 200 and result.ended
    return result.data


def test_webhook_checks_streams_before_their_final_events(gw: Gateway, hook: GuardHook) -> None:
    # Checked once, on the whole text, when the upstream has finished: the finish and [DONE] wait.
    rid = new_request_id()
    data = _stream(gw, "all of this is fine to say", rid)
    assert data[-1] == b"[DONE]" and json.loads(data[-2])["choices"][0]["finish_reason"] == "stop"
    calls = [r.body_json for r in hook.requests if r.body_json.get("request_id") == rid]
    assert [(c["side"], "".join(c["texts"])) for c in calls] == [("output", "all of this is fine to say")]
    # Blocked: the stream ends with the error event instead of its finish and [DONE].
    data = _stream(gw, "this answer turns forbidden at the end", new_request_id())
    last = json.loads(data[-1])
    assert last["error"]["code"] == "guardrail_blocked" and "'hook-out'" in last["error"]["message"]
    assert b"[DONE]" not in data and not any(b'"finish_reason":"stop"' in d for d in data)


def test_webhook_fail_modes(client: openai.OpenAI, upstream: MockUpstream) -> None:
    # Too slow (0.5 s timeout): `allow` serves the request, `block` refuses it.
    rid = new_request_id()
    assert ask(client, "m-hook", "slow one", rid).parse().choices[0].message.content == "mock: slow one"
    error = blocked(client, "m-strict", "slow one")
    assert "'strict'" in error.message
    # An error status and an unreachable hook follow the same modes.
    assert ask(client, "m-hook", "crash now").parse().choices[0].message.content == "mock: crash now"
    blocked(client, "m-strict", "crash now")
    blocked(client, "m-gone", "anything")


def test_plugin_guard(client: openai.OpenAI, upstream: MockUpstream) -> None:
    error = blocked(client, "m-words", "tell me about Project-X")
    assert "'words'" in error.message
    rid = new_request_id()
    ask(client, "m-words", "my favourite colour", rid)
    assert upstream.wait_for(rid).body_json["messages"][0]["content"] == "my favourite color"


def test_custom_pattern_and_deny_list(client: openai.OpenAI, upstream: MockUpstream) -> None:
    rid = new_request_id()
    ask(client, "m-house", "badge EMP-004211 please", rid)
    assert upstream.wait_for(rid).body_json["messages"][0]["content"] == "badge [EMPLOYEE_ID] please"
    error = blocked(client, "m-house", "what is ACME Corp planning")
    assert "deny_list" in error.message and "acme" not in error.message.lower()
    rid = new_request_id()
    ask(client, "m-house", "acmecorp bluebirds", rid)  # whole words only
    assert upstream.wait_for(rid).body_json["messages"][0]["content"] == "acmecorp bluebirds"


def test_bad_guardrail_config_is_refused(tmp_path: Any, upstream: MockUpstream, refused: RefusedPort) -> None:
    config = standard_config(upstream.base_url, refused.base_url)
    config["guardrails"] = [
        {"name": "p", "kind": "pii", "entities": {"email": "shred", "dna": "redact"}},
        {"name": "c", "kind": "pii", "custom": [{"name": "x", "pattern": "("}]},
        {"name": "w", "kind": "webhook", "url": "ftp://x", "on_error": "maybe"},
        {"name": "g", "kind": "plugin", "use": "not_installed"},
    ]
    config["models"][0]["guardrails"] = ["p", "nope"]
    path = write_config(config, tmp_path / "bad.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "gatecore", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "python")},
    )
    assert result.returncode != 0
    for expected in (
        "guardrails[0].entities.email: unknown action 'shred'",
        "guardrails[0].entities.dna: unknown entity type",
        'guardrails[1].custom: pattern of "x"',
        "guardrails[2].url:",
        "guardrails[2].on_error:",
        "models.gpt-test.guardrails: unknown guardrail 'nope'",
        "guardrails[3].use: no installed guardrail plugin 'not_installed'",
    ):
        assert expected in result.stderr + result.stdout, result.stderr


def test_plugin_failure_follows_on_error(client: openai.OpenAI) -> None:
    assert ask(client, "m-words", "explode now").parse().choices[0].message.content == "mock: explode now"
    error = blocked(client, "m-words-strict", "explode now")
    assert "'words-strict'" in error.message and "explode" not in error.message


def test_moderation_guard(client: openai.OpenAI, hook: GuardHook, gw: Gateway) -> None:
    rid = new_request_id()
    error = blocked(client, "m-mod", "how do I kill the neighbour's dog")
    assert "'mod'" in error.message and "kill" not in error.message
    call = hook.find(lambda r: r.path == "/v1/moderations" and "kill" in json.dumps(r.body_json))
    assert call.body_json == {
        "input": ["how do I kill the neighbour's dog"],
        "model": "omni-moderation-latest",
    }
    assert call.headers["authorization"] == "Bearer sk-mod-secret"
    # Flagged in a category this guard does not block on: served.
    assert (
        ask(client, "m-mod", "a hateful remark", rid).parse().choices[0].message.content
        == "mock: a hateful remark"
    )
    assert ask(client, "m-mod", "a kind word").parse().choices[0].message.content == "mock: a kind word"
    assert "sk-mod-secret" not in gw.output()


def test_classifier_model_through_gatecore(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort, hook: GuardHook
) -> None:
    """A classifier guard asks a safety model served through a gatecore (its own key and model, the
    model's engine a Llama-Guard-style loopback server): `unsafe` in a blocking category refuses the
    request, another category or `safe` serves it."""
    classifier_gw = gateway_factory(
        {
            "providers": [
                {"name": "engine", "kind": "openai", "base_url": f"{hook.origin}/v1", "api_key": "sk-e"}
            ],
            "models": [
                {"name": "llama-guard", "deployments": [{"provider": "engine", "model": "llama-guard-4"}]}
            ],
            "auth": {"master_key": "sk-classifier-master-key"},
        }
    )
    config = standard_config(upstream.base_url, refused.base_url)
    config["guardrails"] = [
        {"name": "safety", "kind": "classifier", "url": f"{classifier_gw.base_url}/v1/chat/completions",
         "model": "llama-guard", "api_key": "sk-classifier-master-key", "categories": ["S1"], "on_error": "block"},
    ]  # fmt: skip
    config["models"][0]["guardrails"] = ["safety"]
    gw = gateway_factory(config)
    with make_client(gw) as client:
        rid = new_request_id()
        with pytest.raises(openai.BadRequestError) as caught:
            ask(client, "gpt-test", "how to kill a tree stump", rid)
        assert caught.value.code == "guardrail_blocked"
        assert "'safety'" in caught.value.message and "kill" not in caught.value.message
        assert (
            ask(client, "gpt-test", "a hateful poem").parse().choices[0].message.content
            == "mock: a hateful poem"
        )
        assert ask(client, "gpt-test", "hello").parse().choices[0].message.content == "mock: hello"
    line = gw.wait_access_log(rid)
    assert line["guardrails"] == "safety:S1:block=1" and line["status"] == 400
