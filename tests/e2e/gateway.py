"""Start and stop a real gatecore server in a subprocess, the way users run it.

Modelled on granian's tests/conftest.py: a free loopback port, a bounded wait for readiness with
retries, and the process killed in ``finally``. stdout and stderr go to files the tests read (the access
log is on stdout).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
START_TIMEOUT_S = 30.0

# Secrets the tests put in configs; none may ever show in a log or an error message.
MASTER_KEY = "sk-master-e2e-0d5f"
TEAM_KEY = "sk-test-1-e2e-7a21"
ALL_KEY = "sk-test-all-e2e-93bc"
UPSTREAM_KEY = "sk-upstream-secret-e2e-44c1"
DEFAULT_UPSTREAM_KEY = "sk-default-upstream-e2e-1b77"
UNSET_ENV_VAR = "GATECORE_E2E_SURELY_UNSET"


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get_status(port: int, path: str, timeout: float = 1.0) -> int | None:
    """The status of a GET, or None when nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    except http.client.HTTPException:
        return None
    finally:
        conn.close()


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop(UNSET_ENV_VAR, None)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(name, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    env["UP_KEY"] = UPSTREAM_KEY
    env.update(extra or {})
    return env


def run_cli(
    args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m gatecore <args>`` to completion."""
    return subprocess.run(
        [PYTHON, "-m", "gatecore", *args],
        cwd=REPO_ROOT,
        env=server_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Gateway:
    """A running gatecore server."""

    port: int
    proc: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    config: dict[str, Any] | None = None
    _log_offset: int = field(default=0, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def output(self) -> str:
        return self.stdout() + self.stderr()

    def access_log(self) -> list[dict[str, Any]]:
        """Every stdout line that is a JSON object with a request_id."""
        entries: list[dict[str, Any]] = []
        for line in self.stdout().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and "request_id" in obj:
                entries.append(obj)
        return entries

    def wait_access_log(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The access-log entry of one request (logs are written off the request path: poll)."""
        deadline = time.monotonic() + timeout
        while True:
            for entry in self.access_log():
                if entry.get("request_id") == request_id:
                    return entry
            if time.monotonic() > deadline:
                tail = self.stdout()[-2000:]
                raise AssertionError(
                    f"no access-log line for request_id {request_id!r}; stdout tail:\n{tail}"
                )
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (its own session: workers included), then SIGKILL after a grace period."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    # Whatever is left of the group (workers of a crashed or stuck master) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


@contextlib.contextmanager
def running_gateway(
    args: Sequence[str],
    workdir: Path,
    *,
    config: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    attempts: int = 3,
    ready_path: str = "/readyz",
) -> Iterator[Gateway]:
    """Start ``gatecore serve <args> --host 127.0.0.1 --port <free>`` and yield it once `ready_path`
    answers 200 (/healthz for a server that is expected to stay unready)."""
    workdir.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for attempt in range(attempts):
        port = free_port()
        stdout_path = workdir / f"gateway-{port}.stdout"
        stderr_path = workdir / f"gateway-{port}.stderr"
        cmd = [PYTHON, "-m", "gatecore", "serve", *args, "--host", "127.0.0.1", "--port", str(port)]
        # Without a store.url in the config, each server keeps its SQLite file in its own workdir.
        store_env = {"GATECORE_STORE_URL": f"sqlite:///{workdir / 'gatecore.db'}", **(env or {})}
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            proc = subprocess.Popen(
                cmd, cwd=REPO_ROOT, env=server_env(store_env), stdout=out, stderr=err, start_new_session=True
            )
        gateway = Gateway(port, proc, stdout_path, stderr_path, config)
        try:
            if _wait_ready(gateway, ready_path):
                yield gateway
                return
            failures.append(
                f"attempt {attempt + 1} (port {port}, exit {proc.poll()}):\n"
                f"stdout: {gateway.stdout()[-1500:]}\nstderr: {gateway.stderr()[-3000:]}"
            )
        finally:
            stop_process(proc)
    raise RuntimeError("gatecore did not become ready:\n" + "\n".join(failures))


def _wait_ready(gateway: Gateway, ready_path: str) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not gateway.alive():
            return False
        if http_get_status(gateway.port, ready_path) == 200:
            return True
        time.sleep(0.1)
    return False


CREDENTIALS = ("master_key", "keys", "jwt", "key_hash_secret")


def write_config(config: dict[str, Any], path: Path) -> Path:
    """Write `config` for a server to read. A config that names no credential source is served
    without keys on loopback, where every test server listens: the tests of auth-less behaviour
    (routing, limits by IP-less global rules, …) say so with `auth.unauthenticated: loopback`, which
    gatecore requires since issue 17 (an auth-less config is otherwise an error)."""
    auth = config["auth"] if isinstance(config.get("auth"), dict) else {}
    if not any(auth.get(name) for name in CREDENTIALS) and "unauthenticated" not in auth:
        config = {**config, "auth": {**auth, "unauthenticated": "loopback"}}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# -- the configuration most tests run against --------------------------------------------------------

FAST: dict[str, float] = {"connect": 2, "first_byte": 1.0, "idle": 1.0, "total": 5}
SLOW: dict[str, float] = {"connect": 2, "first_byte": 20, "idle": 20, "total": 40}


def standard_config(upstream_base_url: str, refused_base_url: str, **server: Any) -> dict[str, Any]:
    """Providers ``up`` (the mock), ``up-default`` (same mock, key from a ``${VAR:-default}``) and
    ``down`` (a port that refuses connections); models over them; a master key, a key limited to some
    models and a key for all models."""

    def model(name: str, provider: str, upstream_model: str, timeouts: dict[str, float]) -> dict[str, Any]:
        return {
            "name": name,
            "deployments": [{"provider": provider, "model": upstream_model}],
            "timeouts": dict(timeouts),
        }

    return {
        "server": {"max_body_bytes": 1024 * 1024, "access_log": True, **server},
        "providers": [
            {
                "name": "up",
                "kind": "openai",
                "base_url": upstream_base_url,
                "api_key": "${UP_KEY:-sk-upstream}",
            },
            {
                "name": "up-default",
                "kind": "openai",
                "base_url": upstream_base_url,
                "api_key": "${" + UNSET_ENV_VAR + ":-" + DEFAULT_UPSTREAM_KEY + "}",
            },
            {"name": "down", "kind": "openai", "base_url": refused_base_url, "api_key": "sk-unused"},
        ],
        "models": [
            model("gpt-test", "up", "upstream-model-1", FAST),
            model("gpt-other", "up", "upstream-model-2", FAST),
            model("embed-test", "up", "text-embedding-mock", FAST),
            model("gpt-default-key", "up-default", "upstream-model-1", FAST),
            model("gpt-refused", "down", "upstream-model-1", FAST),
            model("gpt-slow", "up", "upstream-model-1", SLOW),
            model(
                "gpt-total",
                "up",
                "upstream-model-1",
                {"connect": 2, "first_byte": 20, "idle": 20, "total": 1.5},
            ),
        ],
        "auth": {
            "master_key": MASTER_KEY,
            "keys": [
                {"key": TEAM_KEY, "name": "team-a", "models": ["gpt-test", "embed-test", "gpt-slow"]},
                {"key": ALL_KEY, "name": "team-all"},
            ],
        },
    }


STANDARD_MODELS = frozenset(
    {"gpt-test", "gpt-other", "embed-test", "gpt-default-key", "gpt-refused", "gpt-slow", "gpt-total"}
)
TEAM_MODELS = frozenset({"gpt-test", "embed-test", "gpt-slow"})

GatewayFactory = Callable[..., Gateway]
