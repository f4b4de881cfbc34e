"""The chain's last step: every finished request is handed to the recorders (ledger, access log,
metrics, tracing, the limits' settle), off the request path and in batches."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from gatecore.request import RequestContext

log = logging.getLogger("gatecore")


class Recorder(Protocol):
    """Told about every finished inference request (access log, ledger, metrics), off the request path
    (`Recording.finished` calls it on the loop's next turn, over that turn's batch): `record` only
    queues; writing happens later, in batches."""

    def record(self, ctx: RequestContext, finished_ns: int) -> None: ...

    async def aclose(self) -> None:
        """Write out everything still queued (worker shutdown)."""
        ...


class Recording:
    """Hands finished requests to the recorders, in order: the ledger first (it prices the request
    for the others), the limits' settle last."""

    __slots__ = ("_batch", "in_flight", "recorders")

    def __init__(self, recorders: tuple[Recorder, ...]):
        self.recorders = recorders
        # Inference requests between arrival and being handed to the recorders (drained at shutdown;
        # `aclose` then records those handed over in the loop's last turn).
        self.in_flight = 0
        # Finished requests waiting for the recorders (`finished`).
        self._batch: list[tuple[RequestContext, int]] = []

    def finished(self, ctx: RequestContext, finished_ns: int) -> None:
        """Hand a finished request to the recorders, on the loop's next turn, with the others that
        finish in this one: each recorder then runs over the batch while its code and data are in
        the CPU's caches (run one request at a time, after its relay, they cost the server about
        three times what they cost in a loop). A later request's handler runs after them, so a
        scrape or a usage query made after an answer arrived counts it."""
        batch = self._batch
        batch.append((ctx, finished_ns))
        if len(batch) == 1:
            asyncio.get_running_loop().call_soon(self.record_batch)

    def record_batch(self) -> None:
        """Record what is queued now (the loop's next turn, or the worker's shutdown)."""
        batch, self._batch = self._batch, []
        for recorder in self.recorders:  # the ledger first: it prices for the others
            for ctx, finished_ns in batch:
                try:
                    recorder.record(ctx, finished_ns)
                except Exception:  # one recorder's failure must not cost the others their record
                    log.exception("%s failed for request %s", type(recorder).__name__, ctx.request_id)

    async def aclose(self) -> None:
        """Record what is still queued, then let every recorder write out and close."""
        self.record_batch()
        for recorder in self.recorders:
            await recorder.aclose()
