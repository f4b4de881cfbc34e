"""Start granian (RSGI, uvloop) with the gatecore app in one or more worker processes.

The main process owns reloads: SIGHUP (granian's own handler restarts every worker; ours replaces
it) and, with `server.config_watch`, a change of the config file validate the config and announce
it to the workers through the reload file (server/reload.py); a refused config is logged with every
error and the old one keeps serving.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
from typing import Any

from gatecore.config.load import ConfigError
from gatecore.config.source import CONFIG_ENV, DEMO_ENV
from gatecore.limits.local import COUNTERS_ENV
from gatecore.server.reload import RELOAD_FILE_ENV, announce, config_hash, load_checked
from gatecore.telemetry.worker_files import METRICS_DIR_ENV

log = logging.getLogger("gatecore.reload")
WATCH_INTERVAL_S = 1.0  # server.config_watch: how often the main process looks at the file
# SIGHUP (main thread) and the file watch (its thread) may reload at once: one at a time.
_reloading = threading.Lock()


def reload_config(config_path: str | None, demo: bool, reload_file: str) -> bool:
    """Validate the config file and announce it to the workers; False (logged) when refused."""
    # A timeout, not a plain wait: a second SIGHUP during the first runs on the same thread.
    if not _reloading.acquire(timeout=5.0):
        log.warning("a config reload is already running; this one is skipped")
        return False
    try:
        return _reload_config(config_path, demo, reload_file)
    finally:
        _reloading.release()


def _reload_config(config_path: str | None, demo: bool, reload_file: str) -> bool:
    try:
        config = load_checked(config_path, demo)
    except ConfigError as exc:
        log.error("config reload refused; the old config keeps serving:")
        for error in exc.errors:
            log.error("  %s", error)
        return False
    digest = config_hash(config)
    try:
        announce(reload_file, digest)
    except OSError as exc:
        log.error("cannot announce the config to the workers: %s", exc)
        return False
    log.info("config %s announced to the workers", digest)
    return True


def _watch_file(config_path: str, demo: bool, reload_file: str, stop: threading.Event) -> None:
    """Poll the config file's mtime and size; a change reloads (a refused file waits for the next)."""

    def stamp() -> tuple[int, int] | None:
        try:
            st = os.stat(config_path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    seen = stamp()
    while not stop.wait(WATCH_INTERVAL_S):
        now = stamp()
        if now is not None and now != seen:
            seen = now
            log.info("the config file changed; reloading")
            reload_config(config_path, demo, reload_file)


def serve(
    config_path: str | None,
    demo: bool,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    max_rss_mb: int = 0,
    config_watch: bool = False,
) -> None:
    """Run the server until interrupted. The config must already be validated."""
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.log import LogLevels
    from granian.server import Server

    config_abs = os.path.abspath(config_path) if config_path else None

    class ReloadingServer(Server):  # type: ignore[misc,valid-type]
        """granian's server, with SIGHUP reloading the config in place instead of restarting."""

        def signal_handler_reload(self, *args: Any, **kwargs: Any) -> None:
            log.info("SIGHUP: reloading the config")
            reload_config(config_abs, demo, reload_file)

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
    # The reload file (server/reload.py): the workers poll it for a new config's token.
    fd, reload_file = tempfile.mkstemp(prefix=f"gatecore-{port}-", suffix=".reload", dir=shm)
    os.close(fd)
    os.environ[RELOAD_FILE_ENV] = reload_file
    stop_watch = threading.Event()
    if config_watch and config_abs:
        threading.Thread(
            target=_watch_file, args=(config_abs, demo, reload_file, stop_watch), daemon=True
        ).start()
    server = ReloadingServer(
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
        stop_watch.set()
        for path in (counters, reload_file):
            with contextlib.suppress(OSError):
                os.unlink(path)
        shutil.rmtree(metrics_dir, ignore_errors=True)
