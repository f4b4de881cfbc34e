"""The semantic lookup: after an exact miss, a request whose conversation means the same as a stored
one's gets that answer, when the namespace, the model and every non-text parameter are the same.

The conversation's text is embedded by `cache.semantic.embedding_model`, a gatecore model, through
gatecore's own embeddings chain with the caller's key (pipeline/internal_call.py), so the call is
authenticated, limited, priced and in the ledger. The nearest stored entries come from the vector
store (cache/semantic_sqlite.py) with the namespace and the parameters' key as filters of the query
itself; the most similar live one at or above the model's threshold answers. An embedding or store
that fails or is slower than `timeout_s` leaves the request uncached (logged once, counted).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from gatecore._core import cache_key
from gatecore.cache.entry import DECODER, ENCODER, CachedAnswer
from gatecore.cache.stats import CacheStats
from gatecore.config.cache import SemanticCacheConfig

if TYPE_CHECKING:
    from gatecore.cache.semantic_postgres import PostgresVectorStore
    from gatecore.cache.semantic_sqlite import SqliteVectorStore

log = logging.getLogger("gatecore.cache")
# POST a JSON body through the embeddings chain as the caller with this key: (status, body).
EmbedCall = Callable[[bytes, str | None, str], Awaitable[tuple[int, bytes]]]
_MAX_DIMS = 16_384


class _Embedding(msgspec.Struct):
    embedding: list[float]


class _Embeddings(msgspec.Struct):
    data: list[_Embedding]


_EMBEDDINGS = msgspec.json.Decoder(_Embeddings)
_BODY = msgspec.json.Decoder(dict[str, Any])


class SemanticMatch:
    """A semantic hit: the stored answer, its entry's id and the similarity."""

    __slots__ = ("entry", "entry_id", "similarity")

    def __init__(self, entry: CachedAnswer, entry_id: str, similarity: float):
        self.entry = entry
        self.entry_id = entry_id
        self.similarity = similarity


class Probe:
    """What a semantic miss keeps for storing the answer: the query's vector and filters."""

    __slots__ = ("params", "vector")

    def __init__(self, params: str, vector: list[float]):
        self.params = params
        self.vector = vector


class SemanticCache:
    """The worker's semantic lookup and store."""

    def __init__(self, config: SemanticCacheConfig, location: str, secret: bytes, stats: CacheStats):
        self.model = config.embedding_model
        self.timeout_s = config.timeout_s
        self.max_chars = config.max_chars
        # `location`: the SQLite file, or the PostgreSQL URL (the store's, `store: postgres`).
        # Imported here: a worker without a semantic cache loads neither driver.
        self.store: SqliteVectorStore | PostgresVectorStore
        if config.store == "postgres":
            from gatecore.cache.semantic_postgres import PostgresVectorStore

            self.store = PostgresVectorStore(location)
        else:
            from gatecore.cache.semantic_sqlite import SqliteVectorStore

            self.store = SqliteVectorStore(location)
        self.secret = secret
        self.stats = stats
        self.embed: EmbedCall | None = None  # set by the worker once its chains exist
        self._failing = False
        self._pending: set[asyncio.Future[None]] = set()

    async def lookup(
        self, body: bytes, namespace: str, api: str, api_key: str | None, request_id: str, threshold: float
    ) -> tuple[SemanticMatch | None, Probe | None]:
        """The best live match at or above `threshold`, and the probe to store a miss's answer with
        (None when the request has no text or the lookup failed)."""
        split = self._split(body, namespace, api)
        if split is None or self.embed is None:
            return None, None
        text, params = split
        try:
            async with asyncio.timeout(self.timeout_s):
                vector = await self._vector(text, api_key, request_id)
                if vector is None:
                    return None, None
                found = await self.store.nearest(namespace, params, vector)
        except Exception as exc:  # the store's or the embedding's failure: uncached, never a 5xx
            self._failed(exc)
            return None, None
        self._failing = False
        probe = Probe(params, vector)
        for entry_id, similarity, raw in found:
            if similarity < threshold:
                break
            try:
                entry = DECODER.decode(raw)
            except msgspec.DecodeError:
                continue
            if entry.namespace == namespace:
                return SemanticMatch(entry, entry_id, similarity), probe
        return None, probe

    def _split(self, body: bytes, namespace: str, api: str) -> tuple[str, str] | None:
        """The conversation's text (its end, within `max_chars`) and the key of everything else."""
        try:
            doc = _BODY.decode(body)
        except (msgspec.DecodeError, RecursionError):
            return None
        messages = doc.pop("messages", None)
        if not isinstance(messages, list):
            return None
        texts = [
            f"{m.get('role')}: {t}"
            for m in messages
            if isinstance(m, dict) and (t := _text(m.get("content")))
        ]
        if not texts:
            return None
        keyed = cache_key(self.secret, namespace, api, msgspec.json.encode(doc))
        if keyed is None:
            return None
        return "\n".join(texts)[-self.max_chars :], keyed[0].hex()

    async def _vector(self, text: str, api_key: str | None, request_id: str) -> list[float] | None:
        embed = self.embed
        assert embed is not None
        body = msgspec.json.encode({"model": self.model, "input": text})
        status, answer = await embed(body, api_key, f"{request_id}-embed"[:128])
        if status != 200:
            raise RuntimeError(f"the embedding model answered {status}")
        data = _EMBEDDINGS.decode(answer).data
        if len(data) != 1 or not 0 < len(data[0].embedding) <= _MAX_DIMS:
            raise RuntimeError("the embedding model's answer has no usable vector")
        return data[0].embedding

    def add(self, namespace: str, probe: Probe, entry: CachedAnswer, ttl_s: float) -> None:
        """Store `entry` under `probe`'s vector (in the background)."""
        future = asyncio.ensure_future(
            self.store.add(
                namespace,
                probe.params,
                probe.vector,
                uuid.uuid4().hex[:16],
                ENCODER.encode(entry),
                entry.stored_at + ttl_s,
            )
        )
        self._pending.add(future)
        future.add_done_callback(self._stored)

    def _stored(self, future: asyncio.Future[None]) -> None:
        self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            self._failed(future.exception())  # type: ignore[arg-type]

    def _failed(self, exc: BaseException) -> None:
        self.stats.errors += 1
        if not self._failing:
            self._failing = True
            log.error(
                "the semantic cache failed (%s: %s); requests go on uncached",
                type(exc).__name__,
                str(exc)[:200],
            )

    async def purge(self, matches: Callable[[CachedAnswer], bool], namespace: str | None) -> int:
        """Drop the stored answers `matches` accepts (of `namespace` only, when given)."""

        def decoded(raw: bytes) -> bool:
            try:
                return matches(DECODER.decode(raw))
            except msgspec.DecodeError:
                return True

        return await self.store.purge(decoded, namespace)

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=2)
        await self.store.aclose()


def _text(content: Any) -> str:
    """A message's text: its string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""
