"""Prefix affinity: the same prompt prefix → the same deployment, for the engines' KV prefix caches.

The key is the first N bytes of the request body from its `messages` (or `prompt`) member: the system
prompt and first turns, which is what a prefix cache can reuse. Deployments are ranked by rendezvous
(highest random weight) hashing with a stable hash, so every worker maps a prefix to the same
deployment, and when that one is unavailable only its own prefixes move (to their second choice).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gatecore.routing.deployment import Deployment

_MASK = (1 << 64) - 1
_SCALE = 2.0**-64


def prefix_key(body: bytes, size: int) -> int:
    """A stable hash of the prompt's first `size` bytes (the whole body's when it has neither member)."""
    start = body.find(b'"messages"')
    if start < 0:
        start = max(0, body.find(b'"prompt"'))
    return zlib.crc32(body[start : start + size])


def affine(deployments: Sequence[Deployment], key: int, load_factor: float = 0.0) -> Deployment:
    """The deployment `key` ranks first: weighted rendezvous hashing (score = -weight / ln(u)).

    With a `load_factor` (>= 1), consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam):
    a deployment already holding more than `load_factor` times its even share of this worker's
    requests in flight (plus this one) is passed over for the next in the key's ranking, so a hot
    prefix spills to its second choice instead of piling up behind one replica's queue."""
    if len(deployments) == 1:
        return deployments[0]
    if load_factor <= 0:
        best = deployments[0]
        best_score = -math.inf
        for deployment in deployments:
            score = _score(deployment, key)
            if score > best_score:
                best, best_score = deployment, score
        return best
    ranked = sorted(deployments, key=lambda d: _score(d, key), reverse=True)
    total = sum(d.inflight for d in deployments) + 1
    bound = math.ceil(load_factor * total / len(deployments))
    for deployment in ranked:
        if deployment.inflight + 1 <= bound:
            return deployment
    return ranked[0]


def _score(deployment: Deployment, key: int) -> float:
    u = (_mix(key << 32 | zlib.crc32(deployment.id.encode())) + 0.5) * _SCALE
    return -deployment.weight / math.log(u)


def _mix(x: int) -> int:
    """SplitMix64's finalizer: every input bit moves every output bit (a CRC seeded with the key
    would not: CRCs are linear, so two deployments' values would keep a fixed relation)."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)
