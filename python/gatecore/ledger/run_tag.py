"""The run tag stage: `x-gatecore-run-id` groups a benchmark run's requests in the ledger."""

from __future__ import annotations

from gatecore.errors import InvalidRequest
from gatecore.request import RequestContext
from gatecore.run_id import RUN_ID


def run_tag(client_value: str | None) -> str | None:
    """The client's `x-gatecore-run-id` (a tag grouping requests in the ledger into a benchmark run),
    None without one; 400 when it is not 1-128 characters of `A-Z a-z 0-9 . _ : + = @ -`."""
    if client_value is None:
        return None
    if RUN_ID.fullmatch(client_value):
        return client_value
    raise InvalidRequest(
        "'x-gatecore-run-id' must be 1-128 characters of letters, digits and . _ : + = @ -.",
        param="x-gatecore-run-id",
        code="invalid_run_id",
    )


class RunTag:
    """Reads the run tag onto the context. It runs after auth: a bad tag is the client's 400 only
    once its key is known to be good."""

    __slots__ = ()

    def __call__(self, ctx: RequestContext) -> None:
        value = ctx.headers.get("x-gatecore-run-id")
        if value is not None:  # most requests have none: no call
            ctx.run_id = run_tag(value)
