"""Issue 17, finding 3: auth failed open. With `auth.key_hash_secret` and a store but no master key or
config keys, and PostgreSQL unreachable at start, a request with no key was answered 200 and proxied
with the provider's credentials; and the documented no-config run was an open relay on 0.0.0.0. Now
auth is on whenever the config names a credential source (a miss is a 503 until the stored keys have
loaded), and serving without keys takes an explicit setting that keeps the server on loopback."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..e2e import raw_http
from ..e2e.gateway import UPSTREAM_KEY, GatewayFactory, free_port, run_cli, standard_config
from ..upstreams.openai_mock import MockUpstream, RefusedPort

HI = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


def test_stored_keys_only_and_the_store_down_is_never_a_pass(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    config = standard_config(upstream.base_url, refused.base_url)
    config["auth"] = {"key_hash_secret": "stored-keys-only-0123456789"}
    config["store"] = {"url": f"postgresql://gatecore@127.0.0.1:{free_port()}/gatecore"}  # nobody there
    gw = gateway_factory(config, ready_path="/healthz")
    anonymous = raw_http.post_json(gw.port, "/v1/chat/completions", HI)
    assert anonymous.status == 401, anonymous.body
    assert anonymous.json()["error"]["code"] == "missing_api_key"
    stored = raw_http.post_json(gw.port, "/v1/chat/completions", HI, "gk-a-stored-key-not-loaded-yet")
    assert stored.status == 503
    assert stored.json()["error"]["code"] == "store_unavailable"
    assert UPSTREAM_KEY not in gw.output()


def test_a_config_without_credentials_must_say_it_serves_without_keys(
    tmp_path: Path, upstream: MockUpstream, refused: RefusedPort
) -> None:
    config = standard_config(upstream.base_url, refused.base_url)
    del config["auth"]
    path = tmp_path / "open.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_cli(["check", "--config", str(path)])
    assert result.returncode == 1
    assert "auth: no credential source" in result.stdout
    # The no-config run with only a provider's key in the environment refuses to start, too.
    env = {"OPENAI_API_KEY": "sk-operators-own", "GATECORE_MASTER_KEY": "", "GATECORE_CONFIG": ""}
    serve = run_cli(["serve", "--port", str(free_port())], env=env, timeout=20)
    assert serve.returncode == 2
    assert "auth: no credential source" in serve.stderr
    assert "sk-operators-own" not in serve.stderr + serve.stdout


def test_serving_without_keys_stays_on_loopback_unless_told_otherwise(
    tmp_path: Path, upstream: MockUpstream, refused: RefusedPort
) -> None:
    config = standard_config(upstream.base_url, refused.base_url)
    config["auth"] = {"unauthenticated": "loopback"}
    path = tmp_path / "open.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_cli(
        ["serve", "--config", str(path), "--host", "0.0.0.0", "--port", str(free_port())], timeout=20
    )
    assert result.returncode == 2
    assert "refusing to serve without keys on 0.0.0.0" in result.stderr
    both = standard_config(upstream.base_url, refused.base_url)
    both["auth"]["unauthenticated"] = "anywhere"  # a master key and an open door: contradictory
    path.write_text(yaml.safe_dump(both))
    check = run_cli(["check", "--config", str(path)])
    assert check.returncode == 1
    assert "auth.unauthenticated: only for a gateway with no credential source" in check.stdout
