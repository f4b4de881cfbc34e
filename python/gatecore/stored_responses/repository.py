"""The stored responses in the store (SQLite / PostgreSQL; migration 7, table `stored_responses`).

A response belongs to the key's team (`team:<id>`), or to the key itself when it has none
(`key:<id>`): every read and delete names the owner in its WHERE clause, so another team's id is
simply not found (404, the same answer as an id that never existed). Writes happen off the request
path (the recorder, on the loop's next turn); a lookup in this worker first waits for a write of that
id still in flight, so a client that continues a response right after it arrived finds it. Expired
rows are never returned, and purged at most once a minute on a write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

from gatecore.errors import StoreUnavailable
from gatecore.policy.key_policy import KeyPolicy
from gatecore.store import Store, StoreError

log = logging.getLogger("gatecore.stored_responses")

MAX_PENDING = 10_000  # writes in flight; more are dropped (logged), never queued without bound
_PURGE_EVERY_S = 60.0


def owner_of(key: KeyPolicy | None) -> str:
    """Who a key's stored responses belong to: its team, else the key itself."""
    if key is None:
        return "anonymous"
    if key.team is not None:
        return "team:" + key.team.id
    return "key:" + key.id


class StoredResponse:
    """One stored response: the items replayed before it, its own input items, and the response."""

    __slots__ = ("created_at", "history", "id", "input_items", "response")

    def __init__(
        self, id: str, created_at: float, history: list[Any], input_items: list[Any], response: dict[str, Any]
    ):
        self.id = id
        self.created_at = created_at
        self.history = history
        self.input_items = input_items
        self.response = response

    def conversation(self) -> list[Any]:
        """The items a response continuing this one replays: everything before it, its input, its output."""
        output = self.response.get("output")
        return [*self.history, *self.input_items, *(output if isinstance(output, list) else ())]


class ResponseStore:
    """Saves, reads and deletes stored responses; unusable (503 from its callers) until the store opens."""

    def __init__(self, retention_days: float, enabled: bool = True):
        self.retention_s = retention_days * 86400.0
        self.enabled = enabled
        self.store: Store | None = None
        self._pending: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._purged_at = 0.0

    def attach(self, store: Store) -> None:
        self.store = store

    def save(self, owner: str, response: dict[str, Any], history: list[Any], items: list[Any]) -> None:
        """Store `response` (off the request path: a task, awaited by lookups of its id)."""
        response_id = response.get("id")
        if self.store is None or not isinstance(response_id, str) or not response_id:
            return
        if len(self._pending) >= MAX_PENDING:
            log.warning(
                "stored responses: %d writes in flight, response %s not stored", MAX_PENDING, response_id
            )
            return
        key = (owner, response_id)
        task = asyncio.get_running_loop().create_task(self._insert(owner, response, history, items))
        self._pending[key] = task
        task.add_done_callback(lambda _: self._pending.pop(key, None))

    async def _insert(
        self, owner: str, response: dict[str, Any], history: list[Any], items: list[Any]
    ) -> None:
        store = self.store
        assert store is not None
        now = time.time()
        try:
            async with store.transaction() as tx:
                await tx.execute(
                    "INSERT INTO stored_responses (id, owner, created_at, expires_at, history, input_items, "
                    "response) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                    response["id"],
                    owner,
                    now,
                    now + self.retention_s,
                    orjson.dumps(history).decode(),
                    orjson.dumps(items).decode(),
                    orjson.dumps(response).decode(),
                )
                if now - self._purged_at > _PURGE_EVERY_S:
                    self._purged_at = now
                    await tx.execute("DELETE FROM stored_responses WHERE expires_at < $1", now)
        except (StoreError, OSError, orjson.JSONEncodeError) as exc:
            log.warning("stored responses: response %s not stored (%s)", response["id"], exc)

    async def get(self, owner: str, response_id: str) -> StoredResponse | None:
        """The owner's response of that id, unless it expired (None: not found)."""
        store = self._ready()
        pending = self._pending.get((owner, response_id))
        if pending is not None:
            await asyncio.shield(pending)
        row = await store.fetchone(
            "SELECT id, created_at, history, input_items, response FROM stored_responses "
            "WHERE id = $1 AND owner = $2 AND expires_at > $3",
            response_id,
            owner,
            time.time(),
        )
        if row is None:
            return None
        return StoredResponse(
            row[0], row[1], orjson.loads(row[2]), orjson.loads(row[3]), orjson.loads(row[4])
        )

    async def delete(self, owner: str, response_id: str) -> bool:
        """Delete the owner's response of that id; False when there was none."""
        store = self._ready()
        pending = self._pending.get((owner, response_id))
        if pending is not None:
            await asyncio.shield(pending)
        async with store.transaction() as tx:
            deleted = await tx.execute(
                "DELETE FROM stored_responses WHERE id = $1 AND owner = $2", response_id, owner
            )
        return deleted > 0

    async def aclose(self) -> None:
        """Wait for the writes in flight (worker shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending.values(), return_exceptions=True)

    def _ready(self) -> Store:
        if self.store is None:
            raise StoreUnavailable("Stored responses are unavailable: the store could not be opened.")
        return self.store
