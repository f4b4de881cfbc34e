"""A gateway configured from the environment alone: no ``--config``, no ``$GATECORE_CONFIG``.

``OPENAI_API_KEY`` (+ ``OPENAI_BASE_URL``) serves ``openai/<model>``, ``GATECORE_UPSTREAM_URL``
(+ ``GATECORE_UPSTREAM_KEY``) serves ``local/<model>``, ``GATECORE_MASTER_KEY`` turns auth on; without
it, ``GATECORE_UNAUTHENTICATED=loopback`` must say the gateway serves without keys (else it refuses to
start: tests/security/test_open_relay_without_credentials.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ..upstreams.openai_mock import MockUpstream
from . import raw_http
from .conftest import make_client, new_request_id
from .gateway import Gateway, GatewayFactory, write_config

CHAT = "/v1/chat/completions"
ENV_MASTER_KEY = "sk-env-master-e2e-6b3d"
OPENAI_SECRET = "sk-env-openai-secret-e2e-2f90"
LOCAL_SECRET = "sk-env-local-secret-e2e-8c15"
SECRETS = (ENV_MASTER_KEY, OPENAI_SECRET, LOCAL_SECRET)

# Everything that could configure the server behind the test's back.
CONFIG_VARS = (
    "GATECORE_CONFIG",
    "GATECORE_DEMO",
    "GATECORE_MASTER_KEY",
    "GATECORE_UNAUTHENTICATED",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "GATECORE_UPSTREAM_URL",
    "GATECORE_UPSTREAM_KEY",
)


def user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def start_from_env(factory: GatewayFactory, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Gateway:
    """``gatecore serve`` with no ``--config``, its environment cleared of config variables but ``env``."""
    for name in CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)
    gw: Gateway = factory(None, env=env)
    return gw


def provider_env(prefix: str, base_url: str) -> dict[str, str]:
    if prefix == "openai":
        return {"OPENAI_API_KEY": OPENAI_SECRET, "OPENAI_BASE_URL": base_url}
    return {"GATECORE_UPSTREAM_URL": base_url, "GATECORE_UPSTREAM_KEY": LOCAL_SECRET}


def _post(gw: Gateway, body: dict[str, Any], key: str | None, rid: str) -> raw_http.RawResponse:
    return raw_http.post_json(gw.port, CHAT, body, key, extra_headers={"x-request-id": rid})


def _assert_error(resp: raw_http.RawResponse, status: int, code: str) -> None:
    assert resp.status == status, resp.body[:300]
    for secret in SECRETS:
        assert secret.encode() not in resp.body
    error = resp.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    assert error["code"] == code


@pytest.mark.parametrize(("prefix", "secret"), [("openai", OPENAI_SECRET), ("local", LOCAL_SECRET)])
def test_provider_from_env(
    gateway_factory: GatewayFactory,
    monkeypatch: pytest.MonkeyPatch,
    upstream: MockUpstream,
    prefix: str,
    secret: str,
) -> None:
    gw = start_from_env(
        gateway_factory,
        monkeypatch,
        {**provider_env(prefix, upstream.base_url), "GATECORE_MASTER_KEY": ENV_MASTER_KEY},
    )
    model = f"{prefix}/some-model"

    with make_client(gw, ENV_MASTER_KEY) as c:
        rid = new_request_id()
        raw = c.chat.completions.with_raw_response.create(
            model=model, messages=user("hello env"), extra_headers={"x-request-id": rid}
        )
        completion = raw.parse()
        assert completion.model == model
        assert completion.choices[0].message.content == "mock: hello env"
        assert raw.headers["x-gatecore-model"] == model
        sent = upstream.wait_for(rid)
        assert sent.path == "/v1/chat/completions"
        assert sent.body_json["model"] == "some-model"
        assert sent.headers["authorization"] == f"Bearer {secret}"
        assert ENV_MASTER_KEY not in json.dumps(sent.headers)

        rid = new_request_id()
        stream = c.chat.completions.create(
            model=model, messages=user("stream env"), stream=True, extra_headers={"x-request-id": rid}
        )
        with stream:
            chunks = list(stream)
        assert {ch.model for ch in chunks} == {model}
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "mock: stream env"
        assert upstream.wait_for(rid).body_json["model"] == "some-model"

        rid = new_request_id()
        nested = c.chat.completions.create(
            model=f"{prefix}/org/model-x", messages=user("nested"), extra_headers={"x-request-id": rid}
        )
        assert nested.model == f"{prefix}/org/model-x"
        assert upstream.wait_for(rid).body_json["model"] == "org/model-x"

        resp = raw_http.request(
            gw.port, "GET", f"/v1/models/{model}", headers={"Authorization": f"Bearer {ENV_MASTER_KEY}"}
        )
        assert resp.status == 200, resp.body[:300]
        assert resp.json()["id"] == model

        other = "local" if prefix == "openai" else "openai"
        with pytest.raises(openai.NotFoundError) as info:
            c.chat.completions.create(model=f"{other}/some-model", messages=user("x"))
        assert info.value.code == "model_not_found"
        with pytest.raises(openai.NotFoundError):
            c.chat.completions.create(model="echo", messages=user("x"))

    body = {"model": model, "messages": [{"role": "user", "content": "no key"}]}
    rid = new_request_id()
    _assert_error(_post(gw, body, None, rid), 401, "missing_api_key")
    _assert_error(_post(gw, body, secret, rid), 401, "invalid_api_key")
    _assert_error(_post(gw, body, ENV_MASTER_KEY + "x", rid), 401, "invalid_api_key")
    assert not upstream.received(rid)
    resp = raw_http.request(gw.port, "GET", "/v1/models")
    _assert_error(resp, 401, "missing_api_key")


def test_both_providers_without_master_key(
    gateway_factory: GatewayFactory, monkeypatch: pytest.MonkeyPatch, upstream: MockUpstream
) -> None:
    """Both providers at once; no master key, and serving without keys said explicitly: auth is off.
    No GATECORE_UPSTREAM_KEY: no Authorization header upstream."""
    env = {"OPENAI_API_KEY": OPENAI_SECRET, "OPENAI_BASE_URL": upstream.base_url}
    env["GATECORE_UNAUTHENTICATED"] = "loopback"
    env["GATECORE_UPSTREAM_URL"] = upstream.base_url
    gw = start_from_env(gateway_factory, monkeypatch, env)

    rid = new_request_id()
    resp = _post(gw, {"model": "openai/m1", "messages": [{"role": "user", "content": "a"}]}, None, rid)
    assert resp.status == 200, resp.body[:300]
    assert resp.json()["model"] == "openai/m1"
    sent = upstream.wait_for(rid)
    assert sent.body_json["model"] == "m1"
    assert sent.headers["authorization"] == f"Bearer {OPENAI_SECRET}"

    rid = new_request_id()
    resp = _post(gw, {"model": "local/m2", "messages": [{"role": "user", "content": "b"}]}, None, rid)
    assert resp.status == 200, resp.body[:300]
    assert resp.json()["model"] == "local/m2"
    assert resp.header("x-gatecore-model") == "local/m2"
    sent = upstream.wait_for(rid)
    assert sent.body_json["model"] == "m2"
    assert "authorization" not in sent.headers

    resp = raw_http.request(gw.port, "GET", "/v1/models")
    assert resp.status == 200


def test_config_file_from_gatecore_config_var(
    gateway_factory: GatewayFactory,
    monkeypatch: pytest.MonkeyPatch,
    upstream: MockUpstream,
    tmp_path: Path,
) -> None:
    """``$GATECORE_CONFIG`` names the file when ``--config`` is absent; the provider variables are then
    not used."""
    config = {
        "providers": [{"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "sk-file"}],
        "models": [{"name": "from-file", "deployments": [{"provider": "up", "model": "upstream-model-2"}]}],
        "auth": {"master_key": ENV_MASTER_KEY},
    }
    path = write_config(config, tmp_path / "via-env.yaml")
    env = {
        "GATECORE_CONFIG": str(path),
        "OPENAI_API_KEY": OPENAI_SECRET,
        "OPENAI_BASE_URL": upstream.base_url,
    }
    gw = start_from_env(gateway_factory, monkeypatch, env)
    with make_client(gw, ENV_MASTER_KEY) as c:
        rid = new_request_id()
        completion = c.chat.completions.create(
            model="from-file", messages=user("file"), extra_headers={"x-request-id": rid}
        )
        assert completion.model == "from-file"
        sent = upstream.wait_for(rid)
        assert sent.body_json["model"] == "upstream-model-2"
        assert sent.headers["authorization"] == "Bearer sk-file"
        with pytest.raises(openai.NotFoundError):
            c.chat.completions.create(model="openai/some-model", messages=user("x"))
