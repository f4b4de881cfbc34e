"""Issue 17, finding 7: a forged collision in the prompt-token cache.

The cache of per-text token counts was keyed by (encoding, length, unkeyed 64-bit FxHash) and never
compared the text, so a client could build, in a few thousand tries, a long prompt whose key equals a
short one's and have it admitted, routed and billed (when the upstream reports no usage) at the short
prompt's count. The replay below builds such a pair against that exact hash and checks the gateway
counts the long prompt as what it is.
"""

from __future__ import annotations

import random
import string

from gatecore._core import count_tokens

from ..e2e import raw_http
from ..e2e.conftest import new_request_id
from ..e2e.gateway import MASTER_KEY, GatewayFactory, standard_config
from ..upstreams.openai_mock import MockUpstream, RefusedPort

_MASK = (1 << 64) - 1
_K = 0x517C_C1B7_2722_0A95
_K_INVERSE = pow(_K, -1, 1 << 64)
# Printable ASCII that needs no JSON escape, so the text is the body's own bytes.
_SAFE = frozenset(bytes(string.ascii_letters + string.digits + string.punctuation + " ", "ascii")) - {
    ord('"'),
    ord("\\"),
}


def _rotl5(h: int) -> int:
    return ((h << 5) | (h >> 59)) & _MASK


def _old_state(data: bytes, h: int = 0) -> int:
    """The old cache's hash state over whole 8-byte words (before its final mix, which is the same
    for both texts and so irrelevant to a collision)."""
    assert len(data) % 8 == 0
    for i in range(0, len(data), 8):
        h = ((_rotl5(h) ^ int.from_bytes(data[i : i + 8], "little")) * _K) & _MASK
    return h


def forge_collision(short: bytes, seed: int = 17) -> bytes:
    """A text of `short`'s length, mostly random symbols (many more tokens), whose old cache key is
    `short`'s: vary the next-to-last word until the last word that hits the target is escape-free
    printable ASCII (about 1 try in 3,300)."""
    rng = random.Random(seed)
    target = _old_state(short)
    alphabet = bytes(sorted(_SAFE))
    body = bytes(rng.choice(alphabet) for _ in range(len(short) - 16))
    prefix_state = _old_state(body)
    for _ in range(1_000_000):
        second_last = bytes(rng.choice(alphabet) for _ in range(8))
        state = ((_rotl5(prefix_state) ^ int.from_bytes(second_last, "little")) * _K) & _MASK
        last = (((target * _K_INVERSE) & _MASK) ^ _rotl5(state)).to_bytes(8, "little")
        if all(b in _SAFE for b in last):
            forged = body + second_last + last
            assert _old_state(forged) == target
            return forged
    raise AssertionError("no collision found")


def _chat_body(text: bytes) -> bytes:
    return (
        b'{"model":"gpt-test","messages":[{"role":"user","content":"'
        + text
        + b'"}],"mock":{"no_usage":true}}'
    )


def test_a_forged_hash_collision_does_not_share_a_token_count(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    gateway = gateway_factory(standard_config(upstream.base_url, refused.base_url))
    short = (b"The quick brown fox jumps over the lazy dog. " * 12)[:536]
    forged = forge_collision(short)
    assert len(forged) == len(short) and forged != short

    entries = []
    for text in (short, forged):
        rid = new_request_id()
        body = _chat_body(text)
        resp = raw_http.request(
            gateway.port,
            "POST",
            "/v1/chat/completions",
            body,
            {
                "Authorization": f"Bearer {MASTER_KEY}",
                "Content-Type": "application/json",
                "x-request-id": rid,
            },
        )
        assert resp.status == 200, resp.body
        entry = gateway.wait_access_log(rid)
        assert entry["usage_source"] == "counted"
        entries.append(entry)

    # One text per body: its prompt count is the text's own, counted here without any cache.
    short_tokens = count_tokens(short.decode(), "o200k_base")
    forged_tokens = count_tokens(forged.decode(), "o200k_base")
    assert forged_tokens > 2 * short_tokens
    assert entries[0]["input_tokens"] == short_tokens
    # The old cache answered the short prompt's count for the forged one.
    assert entries[1]["input_tokens"] == forged_tokens
