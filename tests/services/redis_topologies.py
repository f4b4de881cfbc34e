"""Redis Sentinel and Redis Cluster for tests, from Debian's `redis-server` package alone:
`redis-server --sentinel` watching one master, and three `--cluster-enabled` nodes joined by
`redis-cli --cluster create`. Everything on free loopback ports, nothing persisted."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ..e2e.gateway import free_port
from .redis import RedisServer, _binary, _ping

START_TIMEOUT_S = 15.0


def _start(cmd: list[str], log: Path, port: int) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _ping(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"redis did not start on {port}: " + log.read_text()[-1000:])
        time.sleep(0.05)
    return proc


@contextlib.contextmanager
def running_sentinel(service: str = "mymaster") -> Iterator[tuple[RedisServer, int]]:
    """A master and one Sentinel monitoring it as `service`; yields (master, sentinel port)."""
    with tempfile.TemporaryDirectory(prefix="gatecore-sentinel-") as root_text:
        root = Path(root_text)
        master = RedisServer(root, free_port())
        master.start()
        port = free_port()
        conf = root / "sentinel.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {root}\n"
            f"sentinel monitor {service} 127.0.0.1 {master.port} 1\n"
        )
        proc = None
        try:
            proc = _start([_binary(), str(conf), "--sentinel"], root / "sentinel.log", port)
            yield master, port
        finally:
            if proc is not None:
                proc.kill()
                proc.wait(10)
            master.kill()


@contextlib.contextmanager
def running_cluster(nodes: int = 3) -> Iterator[list[int]]:
    """`nodes` masters joined into one Redis Cluster (every slot covered); yields their ports."""
    cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
    with tempfile.TemporaryDirectory(prefix="gatecore-cluster-") as root_text:
        root = Path(root_text)
        procs: list[subprocess.Popen[bytes]] = []
        ports = [free_port() for _ in range(nodes)]
        try:
            for port in ports:
                cmd = [
                    _binary(), "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "no",
                    "--save", "", "--appendonly", "no", "--dir", str(root),
                    "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                    # The bus port is the port + 10000 unless given: a free port above 55535 has none.
                    "--cluster-port", str(free_port()),
                ]  # fmt: skip
                procs.append(_start(cmd, root / f"node-{port}.log", port))
            subprocess.run(
                [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-replicas", "0",
                 "--cluster-yes"],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                info = subprocess.run(
                    [cli, "-p", str(ports[0]), "cluster", "info"], capture_output=True, text=True, timeout=10
                ).stdout
                if "cluster_state:ok" in info:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the cluster did not come up: " + info[:500])
                time.sleep(0.1)
            yield ports
        finally:
            for proc in procs:
                proc.kill()
                proc.wait(10)
