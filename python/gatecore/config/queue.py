"""msgspec Structs of GPU pools: a model's fair queue (`models[].queue`), the thresholds at which an
engine replica counts as saturated (`models[].routing.saturation`) and a deployment's own tokenizer
(`deployments[].tokenizer`)."""

from __future__ import annotations

import math
import os

import msgspec

QUEUE_BY = ("team", "key", "user")
MAX_CLASSES = 16
MAX_CLASS_NAME = 64


class QueueConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Fair queuing at the gateway for a model served by local engines (routing/pool_gate.py): while
    the pool is busy, requests wait in per-tenant queues served by weighted fair queuing on token
    cost (prompt tokens plus the expected output), each class's weight scaling its share."""

    # The tenant a request queues as: its key's team (else the key), the key, or its key's user
    # (else the key).
    by: str = "team"
    # This worker's requests in flight per deployment at most, and the most admitted while the
    # engine's own queue figures are unknown; a replica the engine reports saturated
    # (`routing.saturation`) takes none until it drains.
    target_in_flight: int = 8
    # Seconds a request waits at most (its class's `class_max_wait_s` first); then a 429 with a
    # Retry-After.
    max_wait_s: float = 30.0
    # Priority classes and their weights. A key's class is its metadata `priority` (else the first
    # class here); `x-gatecore-priority: <class>` picks any class of no greater weight, or one the
    # key's metadata `priorities` lists.
    classes: dict[str, float] = msgspec.field(default_factory=lambda: {"interactive": 4.0, "batch": 1.0})
    class_max_wait_s: dict[str, float] = msgspec.field(default_factory=dict)
    # Requests waiting at most, over every tenant (bounded memory); past it, a 429 at once.
    max_queued: int = 1024
    # Slots of the pool (this worker's, over every deployment) kept free for a tenant below its
    # equal share while another tenant holds its share or more: a newcomer then starts at once
    # instead of waiting for a slot to free, at the cost of up to `headroom` idle slots while two
    # tenants or more are active. 0: off (every slot goes to the queue's head).
    headroom: int = 0
    # A tenant counts as active this long after its last request arrived (headroom's shares).
    active_s: float = 10.0


class SaturationConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """When an engine replica's own `/metrics` say it is saturated: routing skips it while another
    replica has room, and a model's fair queue admits nothing more to it."""

    # Requests the engine reports waiting (plus this worker's sent since the report) at least this.
    max_waiting: float = 4.0
    # KV-cache use (0..1) at least this.
    max_kv_cache: float = 0.95


def queue_errors(queue: QueueConfig, path: str) -> list[str]:
    """Every problem of a model's `queue` section, each with its path."""
    errors: list[str] = []
    if queue.by not in QUEUE_BY:
        errors.append(f"{path}.by: must be one of {', '.join(QUEUE_BY)}")
    if not 1 <= queue.target_in_flight <= 100_000:
        errors.append(f"{path}.target_in_flight: must be between 1 and 100000")
    if not (math.isfinite(queue.max_wait_s) and 0 < queue.max_wait_s <= 3600):
        errors.append(f"{path}.max_wait_s: must be greater than 0 and at most 3600")
    if not 0 <= queue.headroom <= 100_000:
        errors.append(f"{path}.headroom: must be between 0 (off) and 100000")
    if not (math.isfinite(queue.active_s) and 0 < queue.active_s <= 3600):
        errors.append(f"{path}.active_s: must be greater than 0 and at most 3600")
    if not 1 <= queue.max_queued <= 1_000_000:
        errors.append(f"{path}.max_queued: must be between 1 and 1000000")
    if not 1 <= len(queue.classes) <= MAX_CLASSES:
        errors.append(f"{path}.classes: between 1 and {MAX_CLASSES} classes")
    for name, weight in queue.classes.items():
        if not name or len(name) > MAX_CLASS_NAME:
            errors.append(f"{path}.classes: a class name must have 1 to {MAX_CLASS_NAME} characters")
        if not (math.isfinite(weight) and 0 < weight <= 1e6):
            errors.append(f"{path}.classes.{name[:MAX_CLASS_NAME]}: the weight must be greater than 0")
    for name, seconds in queue.class_max_wait_s.items():
        if name not in queue.classes:
            errors.append(f"{path}.class_max_wait_s.{name[:MAX_CLASS_NAME]}: not one of the classes")
        elif not (math.isfinite(seconds) and 0 < seconds <= 3600):
            errors.append(f"{path}.class_max_wait_s.{name}: must be greater than 0 and at most 3600")
    return errors


def saturation_errors(saturation: SaturationConfig, path: str) -> list[str]:
    """Every problem of a model's `routing.saturation` section, each with its path."""
    errors: list[str] = []
    if not (math.isfinite(saturation.max_waiting) and saturation.max_waiting >= 0):
        errors.append(f"{path}.max_waiting: must be 0 or more")
    if not (math.isfinite(saturation.max_kv_cache) and 0 < saturation.max_kv_cache <= 1):
        errors.append(f"{path}.max_kv_cache: must be greater than 0 and at most 1")
    return errors


class TokenizerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A deployment's own tokenizer, for exact prompt token counts (tpm admission, budgets, context
    routing, the fair queue's cost, counted usage) instead of the provider's tiktoken estimate."""

    # A Hugging Face `tokenizer.json` on local disk (read once at start; never downloaded).
    path: str | None = None
    # Ask the engine (`POST /tokenize` on vLLM and SGLang): not available yet (see README).
    engine: bool = False


def tokenizer_errors(tokenizer: TokenizerConfig, path: str) -> list[str]:
    """Problems of a deployment's `tokenizer`: a readable `path` is required."""
    if tokenizer.engine:
        return [f"{path}.engine: counting with the engine's /tokenize is not supported yet; set path"]
    if not tokenizer.path:
        return [f"{path}.path: required (a local tokenizer.json)"]
    if not os.path.isfile(tokenizer.path):
        return [f"{path}.path: no such file: {tokenizer.path[:300]}"]
    from gatecore._core import HfTokenizer  # loaded here once: `gatecore check` reports a bad file

    try:
        HfTokenizer(tokenizer.path)
    except ValueError as exc:
        return [f"{path}.path: not a tokenizer.json ({str(exc)[:300]})"]
    return []
