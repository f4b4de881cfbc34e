"""The command line: ``gatecore check`` and ``gatecore serve --demo``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from . import raw_http
from .conftest import make_client
from .gateway import PYTHON, REPO_ROOT, GatewayFactory, run_cli, server_env, standard_config, write_config

ERROR_LINE = re.compile(r"^(?P<path>[A-Za-z_][\w.\[\]-]*): (?P<reason>.+)$")


def _config(upstream: MockUpstream, refused: RefusedPort) -> dict[str, Any]:
    return standard_config(upstream.base_url, refused.base_url)


def _output(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]


# -- check ---------------------------------------------------------------------------------------------


def test_check_ok(tmp_path: Path, upstream: MockUpstream, refused: RefusedPort) -> None:
    path = write_config(_config(upstream, refused), tmp_path / "ok.yaml")
    result = run_cli(["check", "--config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout.split()


def test_check_ok_json(tmp_path: Path, upstream: MockUpstream, refused: RefusedPort) -> None:
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(_config(upstream, refused)))
    result = run_cli(["check", "--config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout.split()


def test_check_minimal_config(tmp_path: Path) -> None:
    config = {
        "providers": [
            {
                "name": "local",
                "kind": "openai",
                "base_url": "http://127.0.0.1:8000/v1",
                "api_key": "${VLLM_KEY:-none}",
            }
        ],
        "models": [
            {
                "name": "llama",
                "deployments": [{"provider": "local", "model": "meta-llama/Llama-3.1-8B-Instruct"}],
            }
        ],
    }
    result = run_cli(["check", "--config", str(write_config(config, tmp_path / "min.yaml"))])
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_reports_every_error_with_its_path(
    tmp_path: Path, upstream: MockUpstream, refused: RefusedPort
) -> None:
    config = _config(upstream, refused)
    config["models"][1]["deployments"][0]["provider"] = "y"
    config["models"][2]["deployments"][0]["provider"] = "x"
    config["providers"][1]["kind"] = "no-such-kind"
    path = write_config(config, tmp_path / "bad.yaml")
    result = run_cli(["check", "--config", str(path)])
    assert result.returncode == 1, result.stdout + result.stderr
    lines = _output(result)
    assert "models[2].deployments[0].provider: unknown provider 'x'" in lines, lines
    assert "models[1].deployments[0].provider: unknown provider 'y'" in lines, lines
    assert any(line.startswith("providers[1].kind: ") for line in lines), lines
    errors = [m for line in lines if (m := ERROR_LINE.match(line))]
    assert len(errors) >= 3
    assert "ok" not in result.stdout.split()


@pytest.mark.parametrize(
    ("mutate", "path_prefix"),
    [
        (lambda c: c["models"][0].pop("name"), "models[0]"),
        (lambda c: c["providers"][0].pop("base_url"), "providers[0]"),
        (lambda c: c["auth"]["keys"][0].update(models=["no-such-model"]), "auth.keys[0].models"),
        (lambda c: c["server"].update(bogus_option=1), "server"),
        (lambda c: c["models"][0]["timeouts"].update(first_byte="soon"), "models[0].timeouts.first_byte"),
    ],
    ids=[
        "model-without-name",
        "provider-without-base-url",
        "key-unknown-model",
        "unknown-field",
        "bad-timeout",
    ],
)
def test_check_error_paths(
    tmp_path: Path, upstream: MockUpstream, refused: RefusedPort, mutate: Any, path_prefix: str
) -> None:
    config = _config(upstream, refused)
    mutate(config)
    result = run_cli(["check", "--config", str(write_config(config, tmp_path / "bad.yaml"))])
    assert result.returncode == 1, result.stdout + result.stderr
    lines = _output(result)
    assert any(line.startswith(path_prefix) and ERROR_LINE.match(line) for line in lines), lines


def test_check_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("providers: [\n  - {name: up, kind: openai\nmodels: ]]]\n")
    result = run_cli(["check", "--config", str(path)])
    assert result.returncode == 1, result.stdout + result.stderr
    assert _output(result), "an error is printed"
    assert "Traceback" not in result.stderr


def test_check_missing_file(tmp_path: Path) -> None:
    result = run_cli(["check", "--config", str(tmp_path / "nope.yaml")])
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def test_check_does_not_print_secrets(tmp_path: Path, upstream: MockUpstream, refused: RefusedPort) -> None:
    config = _config(upstream, refused)
    config["models"][0]["deployments"][0]["provider"] = "x"
    result = run_cli(["check", "--config", str(write_config(config, tmp_path / "bad.yaml"))])
    assert result.returncode == 1
    for secret in (config["auth"]["master_key"], *(k["key"] for k in config["auth"]["keys"])):
        assert secret not in result.stdout + result.stderr


def test_console_script(tmp_path: Path, upstream: MockUpstream, refused: RefusedPort) -> None:
    script = Path(PYTHON).parent / "gatecore"
    if not script.exists():
        found = shutil.which("gatecore")
        if found is None:
            pytest.skip("the gatecore console script is not installed (maturin develop installs it)")
        script = Path(found)
    path = write_config(_config(upstream, refused), tmp_path / "ok.yaml")
    result = subprocess.run(
        [str(script), "check", "--config", str(path)],
        cwd=REPO_ROOT, env=server_env(), capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout.split()


# -- serve --demo --------------------------------------------------------------------------------------


def test_demo_echo(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(None, extra_args=["--demo"])

    resp = raw_http.post_json(
        gw.port,
        "/v1/chat/completions",
        {"model": "echo", "messages": [{"role": "user", "content": "hello demo"}]},
    )
    assert resp.status == 200, "auth is off in demo mode: no key needed"

    with make_client(gw, "any-key") as c:
        assert "echo" in {m.id for m in c.models.list()}

        first = c.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hello demo"}])
        second = c.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hello demo"}])
        content = first.choices[0].message.content
        assert content
        assert "hello demo" in content
        assert second.choices[0].message.content == content, "echo is deterministic"
        assert first.model == "echo"
        assert first.usage is not None
        assert first.usage.prompt_tokens > 0
        assert first.usage.completion_tokens > 0
        assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens

        stream = c.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "hello demo"}], stream=True
        )
        with stream:
            chunks = list(stream)
        assert len(chunks) > 1, "echo streams in several chunks"
        assert all(ch.choices for ch in chunks)
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == content

        stream = c.chat.completions.create(
            model="echo",
            messages=[{"role": "user", "content": "hello demo"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        with stream:
            chunks = list(stream)
        assert not chunks[-1].choices
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.total_tokens == first.usage.total_tokens


def test_demo_unknown_model_is_404(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(None, extra_args=["--demo"])
    with make_client(gw, "any-key") as c, pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="not-echo", messages=[{"role": "user", "content": "x"}])
