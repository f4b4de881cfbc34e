"""The retry boundary: a stream's first bytes.

Until they reached the client, an attempt can be retried (nothing was sent); after, the relay owns
the stream and a break ends it with an error event. The attempt loop awaits the first bytes before
handing a 2xx stream to its relay (the await the relay would make anyway; a `PeekedAnswer` gives them
back first), so a 2xx head followed by a reset or an empty body is a failed attempt, retried.
"""

from __future__ import annotations

from gatecore.errors import GatewayError, UpstreamProtocolError
from gatecore.upstream.response import PeekedAnswer, UpstreamResponse, WholeAnswer


async def first_bytes(response: UpstreamResponse) -> UpstreamResponse:
    """A 2xx stream with its first bytes read (handed to the relay first), so that a stream that
    ends or breaks before them is a failed attempt, retried like one (nothing reached the client)."""
    whole = response.body_if_complete()
    if whole is not None:
        if not whole:
            raise UpstreamProtocolError("The upstream ended the stream before its first event.")
        return WholeAnswer(response.status, response.content_type, whole)
    try:
        first = await response.next_chunk()
    except GatewayError as exc:
        if exc.retryable:
            raise
        raise UpstreamProtocolError(
            f"The upstream stream broke before its first event: {exc.message}"
        ) from None
    if not first:
        raise UpstreamProtocolError("The upstream ended the stream before its first event.")
    return PeekedAnswer(response, first)
