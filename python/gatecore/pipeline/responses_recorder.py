"""The stored-responses recorder: a `/v1/responses` answer that asked to be stored (`store`, true by
default) is saved once finished, off the request path, under the key's owner (stored_responses/)."""

from __future__ import annotations

from gatecore.request import RequestContext
from gatecore.stored_responses import ResponseStore, owner_of
from gatecore.translate.hub_stream_to_responses import ResponsesEncoder
from gatecore.translate.responses_request_to_hub import plain_items


class StoredResponsesRecorder:
    """Saves finished, stored Responses answers (a failed or cut-off one has no final response)."""

    __slots__ = ("responses",)

    def __init__(self, responses: ResponseStore):
        self.responses = responses

    def record(self, ctx: RequestContext, finished_ns: int) -> None:
        encoder = ctx.encoder
        if not isinstance(encoder, ResponsesEncoder) or encoder.final is None or ctx.status != 200:
            return
        state = encoder.state
        if state.store and self.responses.enabled and not ctx.client_gone:
            items = plain_items(state.hub.items)
            self.responses.save(owner_of(ctx.key), encoder.final, state.history, items)

    async def aclose(self) -> None:
        await self.responses.aclose()
