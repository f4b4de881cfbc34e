"""The output side of a request's guardrails (`ctx.guard`, request/views.py `AnswerGuard`).

Whole answers are decoded, every text checked and rewritten (tokens restored), and re-encoded only
when something changed. Streams are checked as they flow: the content deltas' text is held in a
window; each time `window` new characters have come, everything but the last `overlap` characters is
checked and released as one content event, in order (an entity that straddles the cut is held whole,
and the held tail lets an entity split across chunks be seen whole). Text is handled decoded, so a
rewrite never splits a UTF-8 character or a JSON escape; events are re-encoded with orjson. An event
that is not a plain content delta (role, tool calls, finish, usage, `[DONE]`) first flushes what is
held. A block raises GuardrailBlocked: what was held is dropped and the relay ends the stream with the
API's own error event.
"""

from __future__ import annotations

from typing import Any

import orjson

from gatecore.guardrails.hub_texts import map_answer
from gatecore.guardrails.pii import PiiGuard, Span, apply_spans, count_spans, merge_spans
from gatecore.guardrails.tally import Tally
from gatecore.guardrails.vault import MAX_TOKEN_CHARS, Vault

_DONE = b"[DONE]"
# The most text a choice holds back: past it, text is released even mid-entity (the part released
# is still checked: an entity of one type is redacted in each part).
MAX_HELD_CHARS = 64 * 1024


class AnswerCheck:
    """One request's answer checks: the output PII guards and the request's token vault."""

    __slots__ = ("guards", "held", "overlap", "stream_guards", "tally", "templates", "vault", "window")

    def __init__(self, guards: tuple[PiiGuard, ...], vault: Vault | None, tally: Tally):
        self.guards = guards
        self.vault = vault
        self.tally = tally
        # A guard whose window is 0 does not check streams; tokens are restored in streams whatever.
        self.stream_guards = tuple(g for g in guards if g.window > 0)
        self.window = min((g.window for g in self.stream_guards), default=16)
        self.overlap = max([g.overlap for g in self.stream_guards] + [MAX_TOKEN_CHARS if vault else 0])
        # Per choice index: the text of content deltas not yet released, and the first held event
        # (releases are built from it: same id, model, created).
        self.held: dict[int, str] = {}
        self.templates: dict[int, dict[str, Any]] = {}

    @property
    def flagged(self) -> str | None:
        return self.tally.flagged

    @property
    def reroute(self) -> str | None:
        return self.tally.reroute

    @property
    def counts(self) -> dict[tuple[str, str, str], int]:
        return self.tally.counts

    def text(self, text: str) -> str:
        """`text` checked and rewritten, tokens restored."""
        spans = self._spans(text, self.guards)
        count_spans(self.tally, spans)
        return apply_spans(text, spans)

    def _spans(self, text: str, guards: tuple[PiiGuard, ...]) -> list[Span]:
        groups = [g.spans(text, self.vault, self.tally, True) for g in guards]
        if self.vault is not None:
            groups.append([(s, e, v, None) for s, e, v in self.vault.spans(text)])
        return merge_spans(groups) if groups else []

    def body(self, body: bytes) -> bytes:
        if not self.guards and self.vault is None:
            return body
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body  # not an answer gatecore can read: the relay reports it as it would
        if not isinstance(doc, dict):
            return body
        return orjson.dumps(doc) if map_answer(doc, self.text) else body

    def events(self, events: bytes) -> bytes:
        if not events:
            return events
        if not self.stream_guards and self.vault is None:
            return events
        out: list[bytes] = []
        for event in events.split(b"\n\n"):
            if not event.strip():
                continue
            content, doc = _content_delta(event)
            if content is None or doc is None:
                out.append(self._flush())
                out.append(event + b"\n\n")
                continue
            # Each choice has its own held text (n > 1 interleaves them).
            index = doc["choices"][0].get("index", 0)
            index = index if isinstance(index, int) else 0
            if index not in self.templates:
                self.templates[index] = doc
            self.held[index] = self.held.get(index, "") + content
            out.append(self._release(index, final=False))
        return b"".join(out)

    def end(self) -> bytes:
        return self._flush()

    def _flush(self) -> bytes:
        if not self.held:
            return b""
        return b"".join(self._release(index, final=True) for index in list(self.held))

    def _release(self, index: int, final: bool) -> bytes:
        held = self.held[index]
        if not final and len(held) < self.window + self.overlap:
            return b""
        spans = self._spans(held, self.stream_guards)
        cut = len(held) if final else len(held) - self.overlap
        released: list[Span] = []
        for span in spans:
            start, end, replacement, key = span
            if end <= cut:
                released.append(span)
            elif start < cut:
                if len(held) <= MAX_HELD_CHARS:
                    cut = start  # an entity across the cut is released whole, later
                else:
                    # Past the bound (an upstream writing one endless token must not make the held
                    # text grow without end): the part before the cut goes out replaced.
                    released.append((start, cut, replacement, key))
                break
        count_spans(self.tally, released)  # a held entity is counted once, when it goes out
        ready = apply_spans(held[:cut], released)
        rest = held[cut:]
        template = self.templates[index]
        if rest:
            self.held[index] = rest
        else:
            del self.held[index], self.templates[index]
        if not ready:
            return b""
        choice = dict(template["choices"][0])
        if "delta" in choice:
            choice["delta"] = {"content": ready}
        else:  # a completions stream's choice carries `text`
            choice["text"] = ready
        return b"data: " + orjson.dumps({**template, "choices": [choice]}) + b"\n\n"


def _content_delta(event: bytes) -> tuple[str | None, dict[str, Any] | None]:
    """The content of an event that is a single choice's plain content delta (None otherwise)."""
    if not event.startswith(b"data:") or b"\n" in event.strip():
        return None, None
    payload = event[5:].strip()
    if payload == _DONE or not payload.startswith(b"{"):
        return None, None
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None, None
    choices = doc.get("choices") if isinstance(doc, dict) else None
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        return None, None
    choice = choices[0]
    if choice.get("finish_reason") is not None or doc.get("usage") is not None:
        return None, None
    delta = choice.get("delta")
    if delta is None:  # /v1/completions: {"text", "index", "logprobs", "finish_reason"}
        text = choice.get("text")
        if isinstance(text, str) and choice.get("logprobs") is None:
            return text, doc
        return None, None
    if not isinstance(delta, dict):
        return None, None
    content = delta.get("content")
    if not isinstance(content, str) or any(k != "content" for k in delta):
        return None, None
    return content, doc
