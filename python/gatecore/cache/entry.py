"""What the cache stores for one answer: the bytes the client received, in the writes it received
them in, and what a hit must tell the ledger. Never a credential: no header of the request or of
the upstream's answer is kept."""

from __future__ import annotations

import msgspec


class CachedAnswer(msgspec.Struct, array_like=True, frozen=True):
    """One stored answer (msgpack on Redis)."""

    namespace: str  # checked again on every lookup, besides being part of the key
    model: str  # the client-facing model name (admin purges by it)
    stream: bool
    content_type: str
    parts: list[bytes]  # the client's writes, in order (one for a whole answer)
    input_tokens: int
    output_tokens: int
    finish_reason: str | None
    stored_at: float  # epoch seconds
    # A stream's milliseconds between consecutive writes (`cache.replay_pacing`); empty otherwise, and
    # in entries stored before it existed.
    gaps_ms: list[int] = []

    @property
    def size(self) -> int:
        """The answer's bytes (what the in-process bound counts, plus a fixed overhead)."""
        return sum(len(part) for part in self.parts) + 256


ENCODER = msgspec.msgpack.Encoder()
DECODER = msgspec.msgpack.Decoder(CachedAnswer)
