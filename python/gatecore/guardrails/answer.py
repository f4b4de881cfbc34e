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

from gatecore.errors import GuardrailBlocked
from gatecore.guardrails.external import ExternalGuard, ask
from gatecore.guardrails.hub_texts import map_answer
from gatecore.guardrails.pii import PiiGuard, Span, apply_spans, count_spans, merge_spans
from gatecore.guardrails.tally import Tally
from gatecore.guardrails.vault import MAX_TOKEN_CHARS, Vault

_DONE = b"[DONE]"
# The most text a choice holds back: past it, text is released even mid-entity (the part released
# is still checked: an entity of one type is redacted in each part).
MAX_HELD_CHARS = 64 * 1024
# The most answer text the external output checks are sent (the first this many characters).
MAX_CHECKED_CHARS = 256 * 1024


StreamShape = tuple[tuple[PiiGuard, ...], int, int]


def stream_shape(guards: tuple[PiiGuard, ...], tokenizes: bool) -> StreamShape:
    """The guards that check streams, the window and the held tail. A guard whose window is 0 does
    not check streams; tokens are restored in streams whatever (the tail covers the longest token).
    External checks alone hold nothing back (window 0): they see the text as it goes out."""
    stream_guards = tuple(g for g in guards if g.window > 0)
    window = min((g.window for g in stream_guards), default=16 if tokenizes else 0)
    overlap = max([g.overlap for g in stream_guards] + [MAX_TOKEN_CHARS if tokenizes else 0])
    return stream_guards, window, overlap


class AnswerCheck:
    """One request's answer checks: the output PII guards, the request's token vault, and the
    external guards that check the answer (webhook, moderation, classifier, plugin)."""

    __slots__ = (
        "external",
        "final",
        "guards",
        "held",
        "model",
        "overlap",
        "request_id",
        "seen",
        "seen_chars",
        "stream_guards",
        "tally",
        "vault",
        "window",
    )

    def __init__(
        self,
        guards: tuple[PiiGuard, ...],
        vault: Vault | None,
        tally: Tally,
        external: tuple[ExternalGuard, ...] = (),
        model: str = "",
        request_id: str = "",
        shape: StreamShape | None = None,
    ):
        self.guards = guards
        self.vault = vault
        self.tally = tally
        self.external = external
        self.model = model
        self.request_id = request_id
        # The answer's texts as released (for the external checks), and a stream's final events
        # (finish, usage, `[DONE]`), held until those checks pass.
        self.seen: list[str] = []
        self.seen_chars = 0
        self.final: list[bytes] = []
        # The same for every request of a policy: computed once there (guardrails/stage.py Policy).
        self.stream_guards, self.window, self.overlap = shape or stream_shape(guards, vault is not None)
        # Per choice index: the text not yet released (one channel at a time).
        self.held: dict[int, Held] = {}

    @property
    def flagged(self) -> str | None:
        return self.tally.flagged

    @property
    def checks_answer(self) -> bool:
        return bool(self.external)

    async def check_answer(self) -> None:
        """The external output guards on the answer's text: a block (or a failed check whose
        `on_error` is block) raises GuardrailBlocked; a flag is counted and shown where it still can be."""
        if not self.seen:
            return
        for guard in self.external:
            verdict = await ask(guard, self.seen, "output", self.model, self.request_id, self.tally)
            if verdict is None:
                raise GuardrailBlocked(f"Guardrail '{guard.name}' could not check this answer.")
            if verdict.action == "block":
                raise GuardrailBlocked(f"Guardrail '{guard.name}' blocked this answer.")
            if verdict.action == "flag":
                self.tally.flagged = self.tally.flagged or guard.name

    def _keep(self, text: str) -> str:
        if text and self.seen_chars < MAX_CHECKED_CHARS:
            part = text[: MAX_CHECKED_CHARS - self.seen_chars]
            self.seen.append(part)
            self.seen_chars += len(part)
        return text

    @property
    def reroute(self) -> str | None:
        return self.tally.reroute

    @property
    def counts(self) -> dict[tuple[str, str, str], int]:
        return self.tally.counts

    def text(self, text: str) -> str:
        """`text` checked and rewritten, tokens restored."""
        spans = self._spans(text, self.guards, False)
        if not spans:
            return text
        count_spans(self.tally, spans)
        return apply_spans(text, spans)

    def arguments(self, text: str) -> str:
        """A tool call's arguments (JSON text) checked and rewritten, tokens restored JSON-escaped."""
        spans = self._spans(text, self.guards, True)
        count_spans(self.tally, spans)
        return apply_spans(text, spans)

    def _spans(self, text: str, guards: tuple[PiiGuard, ...], json_text: bool) -> list[Span]:
        if self.vault is None and len(guards) == 1:  # the usual policy: nothing to merge
            return guards[0].spans(text, None, self.tally, True)
        groups = [g.spans(text, self.vault, self.tally, True) for g in guards]
        if self.vault is not None:
            # Restored into JSON text (tool arguments), a value is escaped: a quote must not end the string.
            groups.append(
                [
                    (s, e, orjson.dumps(v).decode()[1:-1] if json_text else v, None)
                    for s, e, v in self.vault.spans(text)
                ]
            )
        return merge_spans(groups) if groups else []

    def body(self, body: bytes) -> bytes:
        if not self.guards and self.vault is None and not self.external:
            return body
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body  # not an answer gatecore can read: the relay reports it as it would
        if not isinstance(doc, dict):
            return body
        changed = map_answer(doc, self.text, self.arguments)
        if self.external:
            map_answer(doc, self._keep)
        return orjson.dumps(doc) if changed else body

    def events(self, events: bytes) -> bytes:
        if not events:
            return events
        if not self.stream_guards and self.vault is None and not self.external:
            return events
        out: list[bytes] = []
        for event in events.split(b"\n\n"):
            if not event.strip():
                continue
            parsed = _text_delta(event)
            if parsed is None:
                out.append(self._flush())
                if self.external and (self.final or _is_final(event)):
                    self.final.append(event + b"\n\n")  # sent once the answer's checks pass
                else:
                    out.append(event + b"\n\n")
                continue
            doc, index, texts, rest = parsed
            if rest is not None:  # what is not text (a tool call's id and name) goes out now, in order
                out.append(self._flush())
                out.append(b"data: " + orjson.dumps(rest) + b"\n\n")
            for channel, text in texts:
                held = self.held.get(index)
                if held is not None and held.channel != channel:
                    out.append(self._release(index, final=True))  # one channel at a time, in order
                    held = None
                if held is None:
                    held = self.held[index] = Held(channel, doc)
                held.text += text
                out.append(self._release(index, final=False))
        return b"".join(out)

    def end(self) -> bytes:
        held = self._flush()
        if self.final:
            held += b"".join(self.final)
            self.final = []
        return held

    def _flush(self) -> bytes:
        if not self.held:
            return b""
        return b"".join(self._release(index, final=True) for index in list(self.held))

    def _release(self, index: int, final: bool) -> bytes:
        hold = self.held[index]
        held = hold.text
        if not final and len(held) < self.window + self.overlap:
            return b""
        spans = self._spans(held, self.stream_guards, isinstance(hold.channel, int))
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
        if rest:
            hold.text = rest
        else:
            del self.held[index]
        if not ready:
            return b""
        if self.external:
            self._keep(ready)
        return b"data: " + orjson.dumps(_released(hold, ready)) + b"\n\n"


class Held:
    """One choice's text not yet released: which field it is (`content`, `reasoning_content`,
    `reasoning`, a completion's `text`, or a tool call's index for its arguments) and the first
    held event, which releases are built from (same id, model, created)."""

    __slots__ = ("channel", "template", "text")

    def __init__(self, channel: str | int, template: dict[str, Any]):
        self.channel = channel
        self.template = template
        self.text = ""


def _released(hold: Held, ready: str) -> dict[str, Any]:
    """The event that carries `ready` in the held channel."""
    template = hold.template
    choice = dict(template["choices"][0])
    channel = hold.channel
    if channel == "text":  # a completions stream's choice
        choice["text"] = ready
    elif isinstance(channel, int):
        choice["delta"] = {"tool_calls": [{"index": channel, "function": {"arguments": ready}}]}
    else:
        choice["delta"] = {channel: ready}
    return {**template, "choices": [choice]}


def _is_final(event: bytes) -> bool:
    """A stream's finish, usage or `[DONE]` event."""
    payload = event[5:].strip() if event.startswith(b"data:") else b""
    if payload == _DONE:
        return True
    if b"finish_reason" not in payload and b"usage" not in payload:
        return False
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(doc, dict):
        return False
    choices = doc.get("choices")
    finished = isinstance(choices, list) and any(
        isinstance(c, dict) and c.get("finish_reason") is not None for c in choices
    )
    return finished or doc.get("usage") is not None


TEXT_FIELDS = ("content", "reasoning_content", "reasoning")
Parsed = tuple[dict[str, Any], int, list[tuple[str | int, str]], dict[str, Any] | None]


def _text_delta(event: bytes) -> Parsed | None:
    """An event of one choice whose delta carries text (content, reasoning, tool call arguments, a
    completion's text): the event, the choice's index, the texts by channel, and the event without
    its texts when something else is left to send (a role, a tool call's id and name); None for
    any other event (finish, usage, `[DONE]`, several choices, not JSON)."""
    if not event.startswith(b"data:") or b"\n" in event.strip():
        return None
    payload = event[5:].strip()
    if payload == _DONE or not payload.startswith(b"{"):
        return None
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    choices = doc.get("choices") if isinstance(doc, dict) else None
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        return None
    choice = choices[0]
    if choice.get("finish_reason") is not None or doc.get("usage") is not None:
        return None
    index = choice.get("index", 0)
    index = index if isinstance(index, int) else 0
    delta = choice.get("delta")
    if delta is None:  # /v1/completions: {"text", "index", "logprobs", "finish_reason"}
        text = choice.get("text")
        if isinstance(text, str) and choice.get("logprobs") is None:
            return doc, index, [("text", text)], None
        return None
    if not isinstance(delta, dict):
        return None
    texts: list[tuple[str | int, str]] = []
    rest = dict(delta)
    for field in TEXT_FIELDS:
        value = delta.get(field)
        if isinstance(value, str):
            del rest[field]
            if value:
                texts.append((field, value))
    calls = delta.get("tool_calls")
    if isinstance(calls, list):
        kept = []
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            arguments = function.get("arguments") if isinstance(function, dict) else None
            if (
                not isinstance(function, dict)
                or not isinstance(arguments, str)
                or not isinstance(call.get("index"), int)
            ):
                kept.append(call)
                continue
            if arguments:
                texts.append((call["index"], arguments))
            header = {k: v for k, v in function.items() if k != "arguments"}
            if header or any(k not in ("index", "function", "type") for k in call):
                kept.append({**call, "function": {**header, "arguments": ""}})  # its id and name
        if kept:
            rest["tool_calls"] = kept
        else:
            del rest["tool_calls"]
    if not texts:
        return None
    if not any(value is not None for value in rest.values()):
        return doc, index, texts, None
    return doc, index, texts, {**doc, "choices": [{**choice, "delta": rest}]}
