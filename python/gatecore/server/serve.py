"""Start granian (RSGI, uvloop) with the gatecore app in one or more worker processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from gatecore.config.source import CONFIG_ENV, DEMO_ENV
from gatecore.limits.local import COUNTERS_ENV
from gatecore.telemetry.worker_files import METRICS_DIR_ENV


def serve(
    config_path: str | None,
    demo: bool,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    max_rss_mb: int = 0,
) -> None:
    """Run the server until interrupted. The config must already be validated."""
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.log import LogLevels
    from granian.server import Server

    # Workers load the config themselves, from the same file and environment.
    os.environ[CONFIG_ENV] = os.path.abspath(config_path) if config_path else ""
    os.environ[DEMO_ENV] = "1" if demo else "0"
    # The limit counters every worker maps (rate limits hold per server, not per worker). Made
    # before the workers start, in shared memory when there is some, and removed when we stop.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    fd, counters = tempfile.mkstemp(prefix=f"gatecore-{port}-", suffix=".counters", dir=shm)
    os.close(fd)
    os.environ[COUNTERS_ENV] = counters
    # Where each worker leaves its metrics for the others' scrapes (telemetry/worker_files.py).
    metrics_dir = tempfile.mkdtemp(prefix=f"gatecore-{port}-", suffix=".metrics", dir=shm)
    os.environ[METRICS_DIR_ENV] = metrics_dir
    server = Server(
        "gatecore.server.app:app",
        address=host,
        port=port,
        interface=Interfaces.RSGI,
        workers=workers,
        loop=Loops.uvloop,
        http=HTTPModes.auto,
        backlog=2048,
        log_level=LogLevels(log_level),
        log_access=False,
        websockets=False,
        workers_max_rss=max_rss_mb or None,
        rss_sample_interval=30,
    )
    try:
        server.serve()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(counters)
        shutil.rmtree(metrics_dir, ignore_errors=True)
