"""The webhook guard: the request's texts POSTed to an operator's service, its verdict applied.

A small HTTP/1.1 client of its own (one connection per call, `Connection: close`): a guard is called
once per request at most, and this keeps the stage free of the upstream pool. The whole call (connect,
send, answer) is bounded by `timeout_s`; an answer is at most 4 MiB. Any failure (refused, timeout, a
non-2xx status, a body that is not a verdict) follows `on_error`: `allow` serves the request,
`block` refuses it, and the failure's kind is counted (never the texts).
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

import msgspec
import orjson

from gatecore.config.guardrails import GuardrailConfig
from gatecore.guardrails.verdict import ACTIONS, VERDICT, Verdict

MAX_ANSWER_BYTES = 4 * 1024 * 1024


class WebhookFailed(Exception):
    """The webhook gave no usable verdict (the reason names the kind of failure only)."""


class JsonEndpoint:
    """Where an external check is POSTed (a webhook, a moderation endpoint), compiled from its URL."""

    __slots__ = ("headers", "host", "path", "port", "timeout_s", "tls")

    def __init__(self, url: str, timeout_s: float, headers: dict[str, str]):
        parts = urlsplit(url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.tls else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout_s = timeout_s
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())

    async def post(self, body: bytes) -> bytes:
        """The 2xx answer's body; WebhookFailed (timeout, unreachable, status, bad_answer) otherwise."""
        try:
            answer = await asyncio.wait_for(self._post(body), self.timeout_s)
        except TimeoutError:
            raise WebhookFailed("timeout") from None
        except OSError:
            raise WebhookFailed("unreachable") from None
        return _body_of(answer)

    async def _post(self, body: bytes) -> bytes:
        context = ssl.create_default_context() if self.tls else None
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=context)
        try:
            head = (
                f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n{self.headers}\r\n"
            )
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
            answer = b""
            while len(answer) <= MAX_ANSWER_BYTES + 65536:
                more = await reader.read(65536)
                if not more:
                    break
                answer += more
        finally:
            writer.close()
        return answer


class WebhookGuard:
    """One configured `kind: webhook` guard."""

    __slots__ = ("endpoint", "fail_open", "name", "reroute_to", "sides")

    def __init__(self, config: GuardrailConfig):
        self.name = config.name
        self.sides = frozenset(config.apply_to)
        self.reroute_to = config.reroute_to
        self.endpoint = JsonEndpoint(config.url or "", config.timeout_s, config.headers)
        self.fail_open = config.on_error == "allow"

    async def check(self, texts: list[str], side: str, model: str, request_id: str) -> Verdict:
        """The webhook's verdict on `texts`; raises WebhookFailed when it gave none in time."""
        body = orjson.dumps(
            {"guardrail": self.name, "side": side, "model": model, "request_id": request_id, "texts": texts}
        )
        raw = await self.endpoint.post(body)
        try:
            verdict = VERDICT.decode(raw)
        except msgspec.DecodeError:
            raise WebhookFailed("bad_answer") from None
        if verdict.action not in ACTIONS or (
            verdict.action == "modify" and (verdict.texts is None or len(verdict.texts) != len(texts))
        ):
            raise WebhookFailed("bad_answer")
        return verdict


def _body_of(answer: bytes) -> bytes:
    """The body of a 2xx HTTP/1.1 answer read to its end (identity or chunked)."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep or len(body) > MAX_ANSWER_BYTES:
        raise WebhookFailed("bad_answer")
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ", 2)
    if len(status) < 2 or not status[1].startswith(b"2"):
        raise WebhookFailed("status")
    if any(
        line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower() for line in lines[1:]
    ):
        return _dechunk(body)
    return body


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while True:
        size_line, sep, rest = body.partition(b"\r\n")
        if not sep:
            raise WebhookFailed("bad_answer")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            raise WebhookFailed("bad_answer") from None
        if size == 0:
            return bytes(out)
        out += rest[:size]
        body = rest[size + 2 :]
