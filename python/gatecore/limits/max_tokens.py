"""Writing a capped `max_tokens` into the request body (a hard budget's reservation made a bound)."""

from __future__ import annotations

import orjson

from gatecore._core import insert_json_member

# The output limit members of the hub format (OpenAI): the newer name wins when both are sent.
_NAMES = ("max_completion_tokens", "max_tokens")


def with_max_tokens(body: bytes, cap: int) -> bytes:
    """`body` with its output limit set to `cap`: inserted in Rust, keeping every other byte, when
    the client sent none (the common case under a budget); else rewritten (the rare lowering)."""
    if b'"max_tokens"' not in body and b'"max_completion_tokens"' not in body:
        inserted = insert_json_member(body, "max_tokens", str(cap).encode())
        if inserted is not None:
            return inserted
    doc = orjson.loads(body)
    present = [name for name in _NAMES if name in doc] or ["max_tokens"]
    for name in present:
        doc[name] = cap
    return orjson.dumps(doc)
