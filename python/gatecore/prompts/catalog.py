"""What the published route resolves a call with: a prompt's head (labels) cached for a second, its
versions cached for good (they never change), and the version a label's split picks for a call.

The request path reads the store only on a miss: a head at most once a second per prompt and
worker, a version once. A write through this worker's admin API drops its head at once, so a
promote or rollback takes effect in the next call here and within a second on other workers.
"""

from __future__ import annotations

import hashlib
import random
import time

from gatecore.errors import NotFound
from gatecore.prompts.repository import PRODUCTION, PromptHead, PromptRepository
from gatecore.prompts.spec import Compiled, decode_spec

HEAD_TTL_S = 1.0
MAX_CACHED = 2000  # entries of each cache; cleared when full (prompts are few, calls are many)


class PromptCatalog:
    """Prompt heads and compiled versions of one worker."""

    __slots__ = ("_compiled", "_heads", "repository")

    def __init__(self, repository: PromptRepository):
        self.repository = repository
        self._heads: dict[str, tuple[float, PromptHead]] = {}
        self._compiled: dict[tuple[str, int], Compiled] = {}

    async def head(self, name: str) -> PromptHead:
        now = time.monotonic()
        cached = self._heads.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        head = await self.repository.head(name)
        if len(self._heads) >= MAX_CACHED:
            self._heads.clear()
        self._heads[name] = (now + HEAD_TTL_S, head)
        return head

    def cached_head(self, name: str) -> PromptHead | None:
        """The head when this worker holds a fresh one (the call path's first try, no await)."""
        cached = self._heads.get(name)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return None

    def cached_version(
        self, head: PromptHead, label: str | None, version: int, sticky_value: str | None
    ) -> Compiled | None:
        """The version `resolve` would give when it is compiled here already; None otherwise (then
        `resolve` says why, or loads it)."""
        if not version:
            found = head.labels.get(label or PRODUCTION)
            if found is None:
                return None
            version = pick(found.versions, head.name, label or PRODUCTION, sticky_value)
        return self._compiled.get((head.name, version))

    def forget(self, name: str) -> None:
        """Drop a head this worker just changed."""
        self._heads.pop(name, None)

    async def compiled(self, name: str, version: int) -> Compiled:
        found = self._compiled.get((name, version))
        if found is None:
            row = await self.repository.version(name, version)
            found = Compiled(decode_spec(row.spec), version)
            if len(self._compiled) >= MAX_CACHED:
                self._compiled.clear()
            self._compiled[(name, version)] = found
        return found

    async def resolve(
        self, head: PromptHead, label: str | None, version: int, sticky_value: str | None
    ) -> Compiled:
        """The version a call runs: `version` when given, else the label's (`production` by default),
        a split label's by weight (sticky: the same `sticky_value` always gets the same version)."""
        if version:
            if not 1 <= version <= head.latest:
                raise NotFound(
                    f"The prompt '{head.name}' has no version {version}.", code="version_not_found"
                )
            return await self.compiled(head.name, version)
        name = label or PRODUCTION
        found = head.labels.get(name)
        if found is None:
            raise NotFound(f"The prompt '{head.name}' has no label '{name[:100]}'.", code="label_not_found")
        return await self.compiled(head.name, pick(found.versions, head.name, name, sticky_value))


def pick(versions: dict[int, float], name: str, label: str, sticky_value: str | None) -> int:
    """A version by weight: a uniform draw, or a hash of (prompt, label, `sticky_value`) so one user
    or session keeps its version while the weights stay."""
    if len(versions) == 1:
        return next(iter(versions))
    total = sum(versions.values())
    if sticky_value is None:
        point = random.random() * total
    else:
        digest = hashlib.sha256(f"{name}\0{label}\0{sticky_value}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64 * total
    for version, weight in sorted(versions.items()):
        point -= weight
        if point < 0:
            return version
    return max(versions)
