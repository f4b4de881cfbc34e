"""The moderation guard: the request's texts sent to a moderation endpoint in OpenAI's
`/v1/moderations` shape (OpenAI's own, or a local model served behind that shape), blocking when it
flags them.

Request: `{"model": <model>, "input": [texts]}` (with `Authorization: Bearer <api_key>` when set).
Answer: `{"results": [{"flagged": bool, "categories": {name: bool}, ...}, ...]}`. A result that is
flagged in one of `categories` (any category when none are configured) blocks the request; the count
names the first such category. Failures follow `on_error` like the webhook guard's.
"""

from __future__ import annotations

import msgspec
import orjson

from gatecore.config.guardrails import GuardrailConfig
from gatecore.guardrails.verdict import Verdict
from gatecore.guardrails.webhook import JsonEndpoint, WebhookFailed

MAX_RESULTS = 4096


class ModerationResult(msgspec.Struct):
    flagged: bool = False
    categories: dict[str, bool] = msgspec.field(default_factory=dict)


class ModerationAnswer(msgspec.Struct):
    results: list[ModerationResult]


_ANSWER = msgspec.json.Decoder(ModerationAnswer)


class ModerationGuard:
    """One configured `kind: moderation` guard."""

    __slots__ = ("categories", "endpoint", "fail_open", "model", "name", "reroute_to", "sides")

    def __init__(self, config: GuardrailConfig):
        self.name = config.name
        self.sides = frozenset(config.apply_to)
        self.reroute_to = config.reroute_to
        headers = dict(config.headers)
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self.endpoint = JsonEndpoint(config.url or "", config.timeout_s, headers)
        self.fail_open = config.on_error == "allow"
        self.model = config.model
        self.categories = frozenset(config.categories)

    async def check(self, texts: list[str], side: str, model: str, request_id: str) -> Verdict:
        """Block when a text is flagged in a configured category; the category is the verdict's
        reason (`texts` carries it, for the tally)."""
        if not texts:
            return Verdict()
        body: dict[str, object] = {"input": texts}
        if self.model:
            body["model"] = self.model
        raw = await self.endpoint.post(orjson.dumps(body))
        try:
            answer = _ANSWER.decode(raw)
        except msgspec.DecodeError:
            raise WebhookFailed("bad_answer") from None
        for result in answer.results[:MAX_RESULTS]:
            if not result.flagged:
                continue
            hits = [
                c
                for c, on in result.categories.items()
                if on and (not self.categories or c in self.categories)
            ]
            if hits or (not self.categories and not result.categories):
                return Verdict("block", [hits[0][:100] if hits else "flagged"])
        return Verdict()


class ChatAnswer(msgspec.Struct):
    choices: list[ChatChoice]


class ChatChoice(msgspec.Struct):
    message: ChatMessage


class ChatMessage(msgspec.Struct):
    content: str | None = None


_CHAT = msgspec.json.Decoder(ChatAnswer)
MAX_TEXT_CHARS = 32 * 1024


class ClassifierGuard:
    """One configured `kind: classifier` guard: a Llama-Guard-style safety model behind an OpenAI
    chat completions endpoint (a local engine, or gatecore itself with a key: the `url` of its own
    `/v1/chat/completions` and a model without guardrails of its own). Each text is sent as one user
    message; an answer whose first line is `unsafe` blocks, its second line naming the categories
    (`S1,S10`); with `categories` set, only those block."""

    __slots__ = ("categories", "endpoint", "fail_open", "model", "name", "reroute_to", "sides")

    def __init__(self, config: GuardrailConfig):
        self.name = config.name
        self.sides = frozenset(config.apply_to)
        self.reroute_to = config.reroute_to
        headers = dict(config.headers)
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self.endpoint = JsonEndpoint(config.url or "", config.timeout_s, headers)
        self.fail_open = config.on_error == "allow"
        self.model = config.model or ""
        self.categories = frozenset(c.upper() for c in config.categories)

    async def check(self, texts: list[str], side: str, model: str, request_id: str) -> Verdict:
        """Block when the classifier calls the request's texts unsafe (in a configured category)."""
        joined = "\n\n".join(texts)[:MAX_TEXT_CHARS]
        if not joined.strip():
            return Verdict()
        body = {"model": self.model, "messages": [{"role": "user", "content": joined}], "max_tokens": 20}
        raw = await self.endpoint.post(orjson.dumps(body))
        try:
            answer = _CHAT.decode(raw)
        except msgspec.DecodeError:
            raise WebhookFailed("bad_answer") from None
        content = (answer.choices[0].message.content or "") if answer.choices else ""
        lines = content.strip().splitlines()
        if not lines or lines[0].strip().lower() != "unsafe":
            return Verdict()
        found = [c.strip().upper()[:20] for c in lines[1].split(",") if c.strip()] if len(lines) > 1 else []
        hits = [c for c in found if not self.categories or c in self.categories]
        if self.categories and not hits:
            return Verdict()
        return Verdict("block", [hits[0] if hits else "unsafe"])
