"""A real redis-server for tests, on a free loopback port, with nothing persisted.

Uses the `redis-server` binary (Debian package `redis-server`; `.ci/run` installs it). `kill()` stops it
at once (tests of Redis going away mid-run); `restart()` brings it back on the same port.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ..e2e.gateway import free_port

START_TIMEOUT_S = 10.0


def _binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found is None:
        raise RuntimeError("redis-server was not found; install the Debian package `redis-server`")
    return found


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process; `url` for the gateway's `redis.url`."""

    def __init__(self, root: Path, port: int):
        self.root = root
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [
            _binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.root),
            "--protected-mode", "no",
        ]  # fmt: skip
        log = open(self.root / "redis.log", "ab")  # noqa: SIM115 - kept open by the child
        with log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ping(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "redis-server did not start: " + (self.root / "redis.log").read_text()[-1000:]
                )
            time.sleep(0.05)

    def kill(self) -> None:
        """Stop at once (SIGKILL): clients see their connections drop."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="gatecore-redis-") as root:
        server = RedisServer(Path(root), free_port())
        try:
            server.start()
            yield server
        finally:
            server.kill()
