"""A loopback upstream that speaks OpenAI's HTTP wire format, written from OpenAI's API reference.

It serves chat completions, legacy completions, embeddings and the model list, streaming included, on
127.0.0.1 from a background thread with its own event loop. Tests point a gateway's provider at
``MockUpstream.base_url``, steer each answer with an extra body field ``"mock": {...}`` (which a
pass-through gateway forwards unchanged) and read back what the upstream received in
``MockUpstream.requests``. See README.md beside this file for the steering keys.

Example::

    with MockUpstream() as upstream:
        ...  # configure a provider with base_url=upstream.base_url, send requests
        recorded = upstream.wait_for("req-1")  # matched on the x-request-id header
        assert recorded.body_json["model"] == "upstream-model-1"
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

JsonObject = dict[str, Any]

CREATED = 1_700_000_000
MOCK_MODELS = ("upstream-model-1", "upstream-model-2", "text-embedding-mock")
DEFAULT_EMBEDDING_DIMS = 8
_TOKEN_RE = re.compile(r"\S+\s*|\s+")


@dataclass
class RecordedRequest:
    """One request as the upstream received it, and what it did with it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    """Header names lower-cased; the last value wins."""
    body: bytes
    body_json: Any
    """The parsed body, or None when it was not valid JSON."""
    received_at: float
    """time.monotonic() when the request was read."""
    peer_port: int | None = None
    """The client's port: requests with the same one came over the same (kept-alive) connection."""
    status: int | None = None
    response_json: Any = None
    """The JSON body answered (non-streamed answers and errors)."""
    events: list[bytes] = field(default_factory=list)
    """The payload of each SSE ``data:`` line written, ``b"[DONE]"`` included."""
    event_times: list[float] = field(default_factory=list)
    """time.monotonic() right after each event was handed to the socket."""
    aborted: bool = False
    """True when the mock itself cut the connection (``cut_after``)."""
    disconnected: threading.Event = field(default_factory=threading.Event)
    """Set when the peer closed the connection before the answer was complete."""
    disconnected_at: float | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    """Set when the handler is done (answered, aborted or disconnected)."""

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")

    def event_objects(self) -> list[JsonObject]:
        """The JSON events written, ``[DONE]`` left out."""
        return [json.loads(e) for e in self.events if e != b"[DONE]"]


@dataclass(frozen=True)
class MockOptions:
    """The ``"mock"`` steering object of a request body."""

    status: int | None = None
    error: Any = None
    first_byte_delay_ms: int = 0
    chunks: int | None = None
    gap_ms: int = 0
    cut_after: int | None = None
    idle_after: int | None = None
    idle_ms: int = 0
    no_usage: bool = False
    hang: bool = False
    content_type: str | None = None
    content: str | None = None
    close: bool = False
    all_at_once: bool = False
    no_done: bool = False
    no_stream: bool = False
    tool_calls: tuple[JsonObject, ...] = ()
    finish_reason: str | None = None
    stop_reason: str | None = None
    reasoning: str | None = None
    no_finish: bool = False
    bad_json_after: int | None = None
    error_event_after: int | None = None

    @classmethod
    def from_body(cls, body: Any) -> MockOptions:
        raw = body.get("mock") if isinstance(body, dict) else None
        if not isinstance(raw, dict):
            return cls()

        def num(name: str) -> int | None:
            value = raw.get(name)
            return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        content = raw.get("content")
        content_type = raw.get("content_type")
        return cls(
            status=num("status"),
            error=raw.get("error"),
            first_byte_delay_ms=num("first_byte_delay_ms") or 0,
            chunks=num("chunks"),
            gap_ms=num("gap_ms") or 0,
            cut_after=num("cut_after"),
            idle_after=num("idle_after"),
            idle_ms=num("idle_ms") or 0,
            no_usage=raw.get("no_usage") is True,
            hang=raw.get("hang") is True,
            content_type=content_type if isinstance(content_type, str) else None,
            content=content if isinstance(content, str) else None,
            close=raw.get("close") is True,
            all_at_once=raw.get("all_at_once") is True,
            no_done=raw.get("no_done") is True,
            no_stream=raw.get("no_stream") is True,
            tool_calls=tuple(c for c in raw.get("tool_calls") or () if isinstance(c, dict)),
            finish_reason=_str_or_none(raw.get("finish_reason")),
            stop_reason=_str_or_none(raw.get("stop_reason")),
            reasoning=_str_or_none(raw.get("reasoning")),
            no_finish=raw.get("no_finish") is True,
            bad_json_after=num("bad_json_after"),
            error_event_after=num("error_event_after"),
        )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def tool_call_fragments(arguments: str, pieces: int = 3) -> list[str]:
    """The argument fragments a stream sends for one tool call; their concatenation is ``arguments``."""
    size = max(1, -(-len(arguments) // pieces))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def _tool_call_id(i: int, call: JsonObject) -> str:
    given = call.get("id")
    return given if isinstance(given, str) else f"call_mock{i}"


def _finish_reason(opts: MockOptions) -> str:
    if opts.finish_reason is not None:
        return opts.finish_reason
    return "tool_calls" if opts.tool_calls else "stop"


class BadRequest(Exception):
    """The request is invalid the way OpenAI would reject it (answered 400)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> JsonObject:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def split_tokens(text: str) -> list[str]:
    """Split text into the content pieces a stream sends; their concatenation is ``text``."""
    return _TOKEN_RE.findall(text) or [""]


def count_words(text: str) -> int:
    return len(text.split())


def expected_embedding(text: str, dims: int = DEFAULT_EMBEDDING_DIMS) -> list[float]:
    """The vector the mock answers for ``text``: values exact in float32, so base64 round-trips."""
    digest = b""
    counter = 0
    while len(digest) < dims:
        digest += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    return [(b - 128) / 128 for b in digest[:dims]]


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(
                part.get("text", "")
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
    return ""


def all_message_text(messages: list[Any]) -> str:
    texts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(str(part["text"]) for part in content if isinstance(part, dict) and "text" in part)
    return " ".join(texts)


def _validate_chat(body: JsonObject) -> list[Any]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"Invalid value for 'messages[{i}]'", f"messages[{i}]")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise BadRequest(f"Invalid type for 'messages[{i}].content'", f"messages[{i}].content")
    return messages


def _prompt_text(body: JsonObject) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return " ".join(prompt)
    if isinstance(prompt, list) and all(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
        return " ".join(str(p) for p in prompt)
    raise BadRequest("'prompt' must be a string, an array of strings or an array of tokens", "prompt")


def _embedding_inputs(body: JsonObject) -> list[str]:
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return list(value)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return [" ".join(str(v) for v in value)]
        if all(isinstance(v, list) for v in value):
            return [" ".join(str(t) for t in v) for v in value]
    raise BadRequest("'input' must be a string or a non-empty array", "input")


class MockUpstream:
    """An OpenAI-compatible HTTP server on 127.0.0.1, run in a background thread."""

    def __init__(self, host: str = "127.0.0.1", *, keepalive_timeout: float | None = None) -> None:
        """``keepalive_timeout``: seconds an idle keep-alive connection stays open before the mock
        closes it (aiohttp's default when None)."""
        self.host = host
        self.port = 0
        self.keepalive_timeout = keepalive_timeout
        self._requests: list[RecordedRequest] = []
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The base URL an OpenAI SDK or an OpenAI-compatible provider config uses."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve(sock))
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"openai-mock-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            self._thread.join(5)
            sock.close()
            if not self._thread.is_alive():
                loop.close()
            self._loop = self._thread = None
            raise RuntimeError(f"mock upstream failed to start: {failure!r}")

    async def _serve(self, sock: socket.socket) -> None:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        self._add_routes(app)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        extra: dict[str, Any] = {}
        if self.keepalive_timeout is not None:
            extra["keepalive_timeout"] = self.keepalive_timeout
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5, **extra)
        await runner.setup()
        await web.SockSite(runner, sock, backlog=1024).start()
        self._runner = runner

    def _add_routes(self, app: web.Application) -> None:
        """Subclasses add their own routes here (before the catch-all 404)."""

    def stop(self) -> None:
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        if runner is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what the tests read ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._cond:
            return list(self._requests)

    def clear(self) -> None:
        with self._cond:
            self._requests.clear()

    def find(self, predicate: Callable[[RecordedRequest], bool], timeout: float = 5.0) -> RecordedRequest:
        """Wait until a received request satisfies ``predicate`` and return the latest such one."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for recorded in reversed(self._requests):
                    if predicate(recorded):
                        return recorded
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the mock upstream received no matching request")
                self._cond.wait(remaining)

    def wait_for(self, request_id: str, timeout: float = 5.0) -> RecordedRequest:
        """The request that carried header ``x-request-id: <request_id>``."""
        return self.find(lambda r: r.request_id == request_id, timeout)

    def received(self, request_id: str) -> bool:
        return any(r.request_id == request_id for r in self.requests)

    # -- handlers --------------------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> RecordedRequest:
        body = await request.read()
        try:
            # Strict UTF-8 first: json.loads(bytes) would let lone surrogates through, OpenAI does not.
            parsed: Any = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):
            parsed = None
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=request.query_string,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            body_json=parsed,
            received_at=time.monotonic(),
            peer_port=_peer_port(request),
        )
        with self._cond:
            self._requests.append(recorded)
            self._cond.notify_all()
        return recorded

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "chat")

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "completion")

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "embedding")

    async def _models(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        data = [{"id": m, "object": "model", "created": CREATED, "owned_by": "mock"} for m in MOCK_MODELS]
        recorded.finished.set()
        return self._json(recorded, 200, {"object": "list", "data": data})

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        recorded.finished.set()
        message = f"Invalid URL ({request.method} {request.path})"
        return self._json(recorded, 404, error_body(message, "invalid_request_error"))

    def _json(
        self, recorded: RecordedRequest, status: int, obj: Any, content_type: str | None = None
    ) -> web.Response:
        recorded.status = status
        recorded.response_json = obj
        return web.Response(
            status=status,
            body=json.dumps(obj).encode(),
            content_type=None if content_type else "application/json",
            headers={"Content-Type": content_type} if content_type else None,
        )

    async def _handle(self, request: web.Request, kind: str) -> web.StreamResponse:
        recorded = await self._record(request)
        body = recorded.body_json
        opts = MockOptions.from_body(body)
        try:
            if opts.hang:
                await asyncio.sleep(3600)
            if opts.first_byte_delay_ms:
                await asyncio.sleep(opts.first_byte_delay_ms / 1000)
            if not isinstance(body, dict):
                msg = "We could not parse the JSON body of your request."
                return _closing(self._json(recorded, 400, error_body(msg, "invalid_request_error")), opts)
            if opts.status is not None and opts.status >= 400:
                error = opts.error if opts.error is not None else self._default_error(opts.status)
                return _closing(self._json(recorded, opts.status, {"error": error}, opts.content_type), opts)
            try:
                if not isinstance(body.get("model"), str):
                    raise BadRequest("you must provide a model parameter", "model")
                if kind == "embedding":
                    obj = self._embedding_response(body)
                    return _closing(self._json(recorded, 200, obj, opts.content_type), opts)
                stream = body.get("stream") is True
                pieces, usage = self._answer(kind, body, opts)
            except BadRequest as exc:
                err = error_body(str(exc), "invalid_request_error", exc.param)
                return _closing(self._json(recorded, 400, err), opts)
            if not stream or opts.no_stream:
                obj = self._whole_response(kind, body, pieces, usage, opts)
                return _closing(self._json(recorded, 200, obj, opts.content_type), opts)
            if opts.all_at_once:
                return _closing(self._whole_stream(recorded, kind, body, pieces, usage, opts), opts)
            return await self._stream(request, recorded, kind, body, pieces, usage, opts)
        except asyncio.CancelledError:
            self._mark_disconnected(recorded)
            raise
        finally:
            recorded.finished.set()

    @staticmethod
    def _mark_disconnected(recorded: RecordedRequest) -> None:
        if not recorded.aborted and not recorded.disconnected.is_set():
            recorded.disconnected_at = time.monotonic()
            recorded.disconnected.set()

    @staticmethod
    def _default_error(status: int) -> JsonObject:
        kinds = {
            400: ("invalid_request_error", None),
            401: ("invalid_request_error", "invalid_api_key"),
            404: ("invalid_request_error", "model_not_found"),
            429: ("requests", "rate_limit_exceeded"),
        }
        type_, code = kinds.get(status, ("server_error", None))
        return {"message": f"mock upstream error {status}", "type": type_, "param": None, "code": code}

    def _answer(self, kind: str, body: JsonObject, opts: MockOptions) -> tuple[list[str], JsonObject]:
        if kind == "chat":
            messages = _validate_chat(body)
            prompt_text, reply_to = all_message_text(messages), last_user_text(messages)
        else:
            prompt_text = reply_to = _prompt_text(body)
        if opts.chunks is not None:
            pieces = [f"tok{i} " for i in range(max(opts.chunks, 0))]
        else:
            pieces = split_tokens(opts.content if opts.content is not None else "mock: " + reply_to)
        prompt_tokens = max(1, count_words(prompt_text))
        completion_tokens = len(pieces)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return pieces, usage

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-mock{next(self._ids):08d}"

    def _whole_response(
        self, kind: str, body: JsonObject, pieces: list[str], usage: JsonObject, opts: MockOptions
    ) -> JsonObject:
        content = "".join(pieces)
        obj: JsonObject
        if kind == "chat":
            message: JsonObject = {"role": "assistant", "content": content, "refusal": None}
            if opts.tool_calls:
                if opts.content is None:
                    message["content"] = None
                message["tool_calls"] = [
                    {
                        "id": _tool_call_id(i, call),
                        "type": "function",
                        "function": {"name": call.get("name"), "arguments": call.get("arguments", "")},
                    }
                    for i, call in enumerate(opts.tool_calls)
                ]
            if opts.reasoning is not None:
                message["reasoning_content"] = opts.reasoning
            choice: JsonObject = {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish_reason(opts),
            }
            if opts.stop_reason is not None:
                choice["stop_reason"] = opts.stop_reason
            obj = {
                "id": self._new_id("chatcmpl"),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [choice],
                "system_fingerprint": "fp_mock",
            }
        else:
            obj = {
                "id": self._new_id("cmpl"),
                "object": "text_completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [{"text": content, "index": 0, "logprobs": None, "finish_reason": "stop"}],
                "system_fingerprint": "fp_mock",
            }
        if not opts.no_usage:
            obj["usage"] = usage
        return obj

    def _stream_events(
        self, kind: str, body: JsonObject, pieces: list[str], usage: JsonObject, opts: MockOptions
    ) -> list[JsonObject]:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        send_usage = include_usage and not opts.no_usage
        if kind == "chat":
            base: JsonObject = {
                "id": self._new_id("chatcmpl"),
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body["model"],
                "system_fingerprint": "fp_mock",
            }

            def choice(delta: JsonObject, finish: str | None) -> JsonObject:
                return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

            choices = [choice({"role": "assistant", "content": "", "refusal": None}, None)]
            if opts.reasoning is not None:
                choices += [choice({"reasoning_content": p}, None) for p in split_tokens(opts.reasoning)]
            if not opts.tool_calls or opts.content is not None:
                choices += [choice({"content": p}, None) for p in pieces]
            for i, call in enumerate(opts.tool_calls):
                # OpenAI's framing: the first delta of a call has its id, type and name with empty
                # arguments; the arguments follow in fragments that carry only the index.
                first = {
                    "index": i,
                    "id": _tool_call_id(i, call),
                    "type": "function",
                    "function": {"name": call.get("name"), "arguments": ""},
                }
                choices.append(choice({"tool_calls": [first]}, None))
                for fragment in tool_call_fragments(str(call.get("arguments", ""))):
                    delta = {"tool_calls": [{"index": i, "function": {"arguments": fragment}}]}
                    choices.append(choice(delta, None))
            if not opts.no_finish:
                last = choice({}, _finish_reason(opts))
                if opts.stop_reason is not None:
                    last["stop_reason"] = opts.stop_reason
                choices.append(last)
        else:
            base = {
                "id": self._new_id("cmpl"),
                "object": "text_completion",
                "created": int(time.time()),
                "model": body["model"],
                "system_fingerprint": "fp_mock",
            }
            choices = [{"text": p, "index": 0, "logprobs": None, "finish_reason": None} for p in pieces]
            choices.append({"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"})
        events: list[JsonObject] = []
        for c in choices:
            event = {**base, "choices": [c]}
            if include_usage:
                event["usage"] = None
            events.append(event)
        if send_usage:
            events.append({**base, "choices": [], "usage": usage})
        return events

    async def _stream(
        self,
        request: web.Request,
        recorded: RecordedRequest,
        kind: str,
        body: JsonObject,
        pieces: list[str],
        usage: JsonObject,
        opts: MockOptions,
    ) -> web.StreamResponse:
        payloads = self._stream_payloads(kind, body, pieces, usage, opts)
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": opts.content_type or "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            },
        )
        recorded.status = 200
        _closing(response, opts)
        await response.prepare(request)
        for i, payload in enumerate(payloads):
            if opts.cut_after is not None and i >= opts.cut_after:
                await self._abort(request, recorded)
            if opts.idle_after is not None and i == opts.idle_after and opts.idle_ms:
                await asyncio.sleep(opts.idle_ms / 1000)
            elif i and opts.gap_ms:
                await asyncio.sleep(opts.gap_ms / 1000)
            try:
                await response.write(b"data: " + payload + b"\n\n")
            except ConnectionResetError:
                # The peer went away between two events.
                self._mark_disconnected(recorded)
                return response
            recorded.events.append(payload)
            recorded.event_times.append(time.monotonic())
        await response.write_eof()
        return response

    def _stream_payloads(
        self, kind: str, body: JsonObject, pieces: list[str], usage: JsonObject, opts: MockOptions
    ) -> list[bytes]:
        """The ``data:`` payload of every event of a stream, ``[DONE]`` last unless ``no_done``."""
        payloads = [json.dumps(e).encode() for e in self._stream_events(kind, body, pieces, usage, opts)]
        if opts.bad_json_after is not None:
            payloads.insert(opts.bad_json_after, b'{"id": "chatcmpl-broken", "choices": [')
        if opts.error_event_after is not None:
            error = opts.error if opts.error is not None else self._default_error(500)
            del payloads[opts.error_event_after :]
            payloads.append(json.dumps({"error": error}).encode())
        if not opts.no_done:
            payloads.append(b"[DONE]")
        return payloads

    def _whole_stream(
        self,
        recorded: RecordedRequest,
        kind: str,
        body: JsonObject,
        pieces: list[str],
        usage: JsonObject,
        opts: MockOptions,
    ) -> web.Response:
        """Every event of a stream in one body with a Content-Length (``all_at_once``): no chunking."""
        payloads = self._stream_payloads(kind, body, pieces, usage, opts)
        recorded.status = 200
        recorded.events.extend(payloads)
        recorded.event_times.extend([time.monotonic()] * len(payloads))
        return web.Response(
            status=200,
            body=b"".join(b"data: " + payload + b"\n\n" for payload in payloads),
            headers={
                "Content-Type": opts.content_type or "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            },
        )

    async def _abort(self, request: web.Request, recorded: RecordedRequest) -> None:
        # Give the events already written a moment to leave the socket buffer, then reset the connection
        # without the terminating chunk; the handler is then cancelled by aiohttp.
        await asyncio.sleep(0.05)
        recorded.aborted = True
        transport = request.transport
        if transport is not None:
            transport.abort()
        await asyncio.sleep(3600)

    def _embedding_response(self, body: JsonObject) -> JsonObject:
        inputs = _embedding_inputs(body)
        dims = body.get("dimensions")
        size = dims if isinstance(dims, int) and not isinstance(dims, bool) and 0 < dims <= 4096 else 8
        as_base64 = body.get("encoding_format") == "base64"
        data: list[JsonObject] = []
        for i, text in enumerate(inputs):
            vector = expected_embedding(text, size)
            value: Any = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode() if as_base64 else vector
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(max(1, count_words(t)) for t in inputs)
        return {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _peer_port(request: web.Request) -> int | None:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return peer[1] if isinstance(peer, tuple) and len(peer) >= 2 and isinstance(peer[1], int) else None


def _closing(response: web.StreamResponse, opts: MockOptions) -> web.StreamResponse:
    """The response, answered with ``Connection: close`` (and the connection closed) when asked."""
    if opts.close:
        response.force_close()
    return response


class RefusedPort:
    """A loopback port that refuses connections: bound (so no one else takes it) but not listening."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self._sock.close()
