"""The reproducibility stamp of a local engine replica: which engine and version serve which model
revision, read off the request path (with the engine's load, routing/engine_load.py) from its own
`GET /version` (vLLM, SGLang; TGI's `GET /info`) and `GET /v1/models`.

Each answer the replica gives carries it as `x-gatecore-served-by` and each ledger row as `served_by`,
so a benchmark's figures say what produced them: `vllm/0.6.3.post1 meta-llama/Llama-3.1-8B@5206a32`
(engine/version, then the model's root and revision, where the engine reports them).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

MAX_STAMP = 200
MAX_INFO_BYTES = 256 * 1024
# What a stamp keeps of the engine's strings (header-safe, no spaces inside a part).
_UNSAFE = re.compile(r"[^A-Za-z0-9._\-+:/@]")
_json = msgspec.json.Decoder()


def engine_family(series: dict[str, list[float]]) -> str | None:
    """The engine a `/metrics` page comes from, by its metric names (None: not one known)."""
    for name in series:
        if name.startswith("vllm:"):
            return "vllm"
        if name.startswith("sglang:"):
            return "sglang"
        if name.startswith("tgi_"):
            return "tgi"
        if name.startswith("llamacpp:"):
            return "llamacpp"
    return None


def _clean(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return _UNSAFE.sub("_", value[:MAX_STAMP]) or None


def _decode(body: bytes | None) -> Any:
    if not body:
        return None
    try:
        return _json.decode(body)
    except msgspec.DecodeError:
        return None


def stamp(
    engine: str | None, version_body: bytes | None, models_body: bytes | None, model: str
) -> str | None:
    """The stamp from the engine's family and its `/version` (or TGI `/info`) and `/v1/models`
    bodies (None where unreadable); None when nothing is known."""
    info = _decode(version_body)
    version = root = revision = None
    if isinstance(info, dict):
        version = _clean(info.get("version"))
        root = _clean(info.get("model_id"))  # TGI's /info
        revision = _clean(info.get("model_sha"))
    listing = _decode(models_body)
    if isinstance(listing, dict) and isinstance(listing.get("data"), list):
        entries = [e for e in listing["data"] if isinstance(e, dict)]
        entry = next((e for e in entries if e.get("id") == model), entries[0] if entries else None)
        if entry is not None:
            root = _clean(entry.get("root")) or _clean(entry.get("id")) or root
            revision = _clean(entry.get("revision")) or revision
    if not (engine or version or root):
        return None
    head = f"{engine or 'engine'}/{version}" if version else engine or "engine"
    if root:
        head += f" {root}" + (f"@{revision}" if revision else "")
    return head[:MAX_STAMP]
