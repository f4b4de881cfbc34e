"""Config reload without restarting the workers.

`gatecore serve` makes a small reload file (in /dev/shm when there is one) and names it in the
environment. Whoever accepts a new config (the main process on SIGHUP or on a change of the watched
file, or the worker that answers `POST /admin/v1/config/reload`) validates it first, then writes a new
token to that file; every worker polls the file off the request path (`POLL_S`) and, when the token
moves, loads the config file again, builds a new `Worker` from it (taking over the old one's upstream
connection pools), starts it and swaps the route table in one assignment. Requests already running
keep the chain they started with (the old snapshot) and finish on it; the old worker is closed once
the last of them is recorded. An invalid config is never announced, so the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import os
import time
from typing import TYPE_CHECKING, Protocol

import msgspec

from gatecore.config.load import ConfigError
from gatecore.config.schema import GatecoreConfig
from gatecore.config.source import CONFIG_ENV, DEMO_ENV, read_config
from gatecore.pipeline.chain import LINKS
from gatecore.pipeline.plugins import placed_links
from gatecore.prompts.augment import augment_errors

if TYPE_CHECKING:  # the main process imports this module too, and never builds a worker
    from gatecore.worker import Worker

RELOAD_FILE_ENV = "GATECORE_RELOAD_FILE"
# How often a worker looks at the reload file: a reload reaches every worker within this plus the
# time to build and start the new worker (well under the 5 s the contract allows).
POLL_S = 0.25
# A replaced worker is closed once its last request is recorded; a request (a long stream) may run
# this long at most before the old worker closes anyway (longer than any default upstream timeout).
RETIRE_WAIT_S = 1800.0
log = logging.getLogger("gatecore.reload")


def load_checked(path: str | None, demo: bool) -> GatecoreConfig:
    """Read and validate the config as `gatecore check` does; raises ConfigError with every error."""
    config = read_config(path, demo=demo)
    placed_links(LINKS, config.pipeline)  # the installed stages, where the config places them
    if errors := augment_errors(config.prompts):  # templates are parsed by the stage's module
        raise ConfigError(errors)
    return config


def load_checked_from_process_env() -> GatecoreConfig:
    """`load_checked` for the file and demo flag `gatecore serve` put in the environment."""
    return load_checked(os.environ.get(CONFIG_ENV) or None, os.environ.get(DEMO_ENV) == "1")


def config_hash(config: GatecoreConfig) -> str:
    """A short digest of the effective config (after ${ENV} interpolation): the same on every worker
    and replica that runs the same config."""
    return hashlib.sha256(msgspec.json.encode(config)).hexdigest()[:16]


def read_token(path: str | None) -> str:
    """The reload file's current token ("" when there is none)."""
    if not path:
        return ""
    try:
        with open(path, encoding="ascii", errors="replace") as src:
            return src.read(200)
    except OSError:
        return ""


def announce(path: str | None, digest: str) -> str:
    """Write a new token to the reload file (atomically: readers never see half) and return it."""
    token = f"{time.time_ns()}-{os.getpid()} {digest}\n"
    if path:
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="ascii") as out:
            out.write(token)
        os.replace(tmp, path)
    return token


class Serving(Protocol):
    """The server that serves with a worker (server/app.py `GatewayApp`)."""

    worker: Worker | None

    def serve(self, worker: Worker) -> None:
        """Serve with `worker` from now on."""
        ...


class ConfigReloader:
    """One worker process's side of reloads: polls the reload file and swaps in new workers."""

    def __init__(self, app: Serving, path: str | None, token: str):
        self.app = app
        self.path = path
        self.token = token
        self.generation = 0
        self._lock = asyncio.Lock()
        self._poll: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._stopping = False

    def start(self) -> None:
        """Watch the reload file (nothing to watch when the server was not started by `serve`)."""
        if self.path:
            self._poll = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            token = await asyncio.to_thread(read_token, self.path)
            if token and token != self.token:
                self.token = token
                try:
                    await self.reload()
                except ConfigError as exc:
                    # Announced as valid, then the file changed again before this worker read it.
                    log.error(
                        "config reload refused; the old config keeps serving: %s", "; ".join(exc.errors)
                    )
                except Exception:
                    log.exception("config reload failed; the old config keeps serving")

    async def reload(self) -> str:
        """Load the config again and serve with it; returns its hash. Raises ConfigError (the old
        config keeps serving)."""
        from gatecore.worker import Worker

        async with self._lock:
            config = await asyncio.to_thread(load_checked_from_process_env)
            old = self.app.worker
            self.generation += 1
            worker = Worker(config, old, self.generation)
            await worker.start()
            self.app.serve(worker)  # from here on, new requests run on the new snapshot
            if old is not None:
                task = asyncio.get_running_loop().create_task(self._retire(old))
                self._retiring.add(task)
                task.add_done_callback(self._retiring.discard)
            digest = config_hash(config)
            log.info("config reloaded (hash %s)", digest)
            return digest

    async def reload_and_announce(self) -> str:
        """`POST /admin/v1/config/reload`: reload here, then tell the other workers."""
        digest = await self.reload()
        self.token = announce(self.path, digest)
        return digest

    async def _retire(self, old: Worker) -> None:
        deadline = time.monotonic() + RETIRE_WAIT_S
        # A poll, not an Event: requests pay nothing to be counted, and this waits only on a reload.
        while old.recording.in_flight and not self._stopping and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await old.aclose()
        # The old worker's objects were frozen out of the GC at start: let a collection free them.
        if not self._stopping:
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    async def aclose(self) -> None:
        """The worker stops: no more reloads; replaced workers finish closing (within the grace)."""
        self._stopping = True
        if self._poll is not None:
            self._poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
