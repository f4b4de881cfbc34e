"""Keeps a worker's key table in step with the store: a short poll of the change counter.

Every identity write bumps one counter in the same transaction, so a poll is one indexed read; the
table is rebuilt only when the counter moved. With the default 0.25 s interval a revocation reaches
every worker of every replica within about a quarter of a second plus the reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from gatecore.errors import GatewayError
from gatecore.identity.records import Tenant
from gatecore.identity.repository import IdentityRepository
from gatecore.identity.snapshot import KeyTable, compile_keys

log = logging.getLogger("gatecore.identity")


class KeyTableHolder(Protocol):
    """Whoever serves from the compiled key table (the auth stage, structurally): identity sits below
    the stages, so it names only what it calls."""

    def install(self, stored: KeyTable, tenants: list[Tenant]) -> None:
        """Replace the store's keys and the tenants they belong to."""


class IdentitySync:
    """Loads the key table at start, then reloads it whenever the store's change counter moves."""

    def __init__(self, repository: IdentityRepository, auth: KeyTableHolder, interval_s: float):
        self.repository = repository
        self.auth = auth
        self.interval_s = interval_s
        self.version = -1
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    @property
    def loaded(self) -> bool:
        """Whether the store's keys have been loaded at least once (readiness)."""
        return self.version >= 0

    async def start(self) -> None:
        """Load the keys, then keep polling. A store down at start is retried by the poll; until it
        answers only the master and config keys work and /readyz says 503."""
        try:
            await self.reload()
        except GatewayError as exc:
            log.error("cannot load keys from the store (%s); retrying every %.2f s", exc, self.interval_s)
            self._failing = True
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def reload(self) -> None:
        version, tenants, keys = await self.repository.load()
        self.auth.install(await compile_keys(tenants, keys), tenants)
        self.version = version

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                if await self.repository.version() != self.version:
                    await self.reload()
                if self._failing:
                    log.warning("the store is reachable again; key table reloaded")
                    self._failing = False
            except GatewayError as exc:
                # Keep serving with the last table; say so once, not every poll.
                if not self._failing:
                    log.warning("cannot refresh keys from the store (%s); serving the last known keys", exc)
                    self._failing = True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
