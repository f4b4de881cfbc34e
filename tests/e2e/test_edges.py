"""Edges of the contract: one model by id, ``x-api-key``, keep-alive with upstreams that close, whole
streams in one write, upstreams that answer a stream with JSON or speak broken HTTP, chunked client
bodies at the size limit, and wildcard model names."""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionStreamOptionsParam

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from . import raw_http
from .conftest import make_client, new_request_id
from .gateway import (
    FAST,
    MASTER_KEY,
    SLOW,
    STANDARD_MODELS,
    TEAM_KEY,
    TEAM_MODELS,
    UPSTREAM_KEY,
    Gateway,
    running_gateway,
    standard_config,
    write_config,
)

CHAT = "/v1/chat/completions"
BOGUS_KEY = "sk-bogus-e2e-edges-5e0c"
SECRETS = (MASTER_KEY, TEAM_KEY, UPSTREAM_KEY, BOGUS_KEY)
SMALL_LIMIT = 4096
"""server.max_body_bytes of the edges gateway."""
IDLE_CLOSE_S = 0.3
"""The keep-alive timeout of the upstream that closes idle connections."""


def user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def _chat_body(model: str, text: str = "edge", stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream, **extra}


def _auth(key: str = MASTER_KEY) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {key}"), ("Content-Type", "application/json")]


def _assert_error(resp: raw_http.RawResponse, status: int, code: str | None) -> dict[str, Any]:
    """An OpenAI-shaped error with that status (and code), no secret in it."""
    assert resp.status == status, resp.body[:500]
    assert (resp.header("content-type") or "").startswith("application/json")
    for secret in SECRETS:
        assert secret.encode() not in resp.body
    error: dict[str, Any] = resp.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    assert isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def _stream(gw: Gateway, body: dict[str, Any], rid: str, timeout: float = 8.0) -> raw_http.StreamResult:
    headers = [*_auth(), ("x-request-id", rid)]
    return raw_http.read_stream(gw.port, CHAT, json.dumps(body).encode(), headers, timeout)


# -- an upstream that speaks broken HTTP -------------------------------------------------------------

PAUSE_S = 0.2
"""Between two parts of a broken reply, so they reach the gateway in separate reads."""
HOLD_OPEN_S = 15.0
"""How long a broken reply that holds its connection open waits for the gateway to close it."""


@dataclass(frozen=True)
class BrokenReply:
    parts: tuple[bytes, ...]
    """Written one after another, PAUSE_S apart."""
    hold_open: bool = False
    """Keep the connection open afterwards until the peer closes it (at most HOLD_OPEN_S)."""


@dataclass
class RawExchange:
    """One request the broken upstream received."""

    behaviour: str
    request_id: str | None
    peer_closed: threading.Event = field(default_factory=threading.Event)
    """Set when the gateway closed the connection while the reply held it open."""


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


_FIRST_EVENT = {
    "id": "chatcmpl-raw",
    "object": "chat.completion.chunk",
    "created": 1_700_000_000,
    "model": "raw-model",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "first"}, "finish_reason": None}],
}
_BAD_CHUNK = b"zz\r\nnot a chunk\r\n"

BROKEN_REPLIES: dict[str, BrokenReply] = {
    "status-abc": BrokenReply((b"HTTP/1.1 abc\r\n\r\n",)),
    "random-bytes": BrokenReply((random.Random(20240601).randbytes(600) + b"\r\n\r\n",)),
    "text-garbage": BrokenReply((b"this is not http at all, just words\r\n\r\n",)),
    "status-999": BrokenReply((b"HTTP/1.1 999 Nope\r\nContent-Length: 0\r\n\r\n",)),
    "bad-length": BrokenReply(
        (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: twelve\r\n\r\n{}",)
    ),
    "bad-chunk-sse": BrokenReply(
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            + _chunk(b"data: " + json.dumps(_FIRST_EVENT).encode() + b"\n\n"),
            _BAD_CHUNK,
        ),
        hold_open=True,
    ),
    "bad-chunk-json": BrokenReply(
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + _chunk(b'{"id": "chatcmpl-raw", '),
            _BAD_CHUNK,
        ),
        hold_open=True,
    ),
}


def _odd_events() -> bytes:
    base = {
        "id": "chatcmpl-raw",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "raw-model",
    }
    deltas: list[tuple[dict[str, Any], str | None]] = [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "until "}, None),
        ({"content": "eof"}, None),
        ({}, "stop"),
    ]
    events = [
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        for delta, finish in deltas
    ]
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


_ODD_JSON = json.dumps(
    {
        "id": "chatcmpl-raw",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "raw-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "until eof"}, "finish_reason": "stop"}
        ],
    }
).encode()

ODD_REPLIES: dict[str, BrokenReply] = {
    # Valid HTTP that few servers send: a body that ends when the connection closes (no length, no
    # chunking), and a head that arrives in pieces.
    "eof-json": BrokenReply((b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + _ODD_JSON,)),
    "eof-sse": BrokenReply((b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", _odd_events())),
    "split-head": BrokenReply(
        (
            b"HTT",
            b"P/1.1 200 OK\r\nContent-Type: application/json\r\nContent-",
            f"Length: {len(_ODD_JSON)}\r\n\r\n".encode() + _ODD_JSON[:10],
            _ODD_JSON[10:],
        )
    ),
}
INVALID_HEADS = ("status-abc", "random-bytes", "text-garbage", "status-999", "bad-length")


def _read_request(conn: socket.socket) -> dict[str, str]:
    """Read one request (head and Content-Length body); its headers, lower-cased, plus ``:path``."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            raise ConnectionError("closed before the end of the request head")
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {":path": lines[0].split(" ")[1] if lines[0].count(" ") >= 2 else "/"}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        more = conn.recv(65536)
        if not more:
            raise ConnectionError("closed before the end of the request body")
        rest += more
    return headers


class BrokenUpstream:
    """A loopback server that reads each HTTP request and answers scripted bytes (broken or odd HTTP).

    The first path segment picks the reply, so one server backs several providers:
    ``base_url("status-abc")`` is ``http://127.0.0.1:<port>/status-abc/v1``. One request per connection,
    closed once the reply is written (or, for ``hold_open`` replies, once the peer closed it).
    """

    def __init__(self, replies: Mapping[str, BrokenReply]) -> None:
        self._replies = dict(replies)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._cond = threading.Condition()
        self._open: set[socket.socket] = set()
        self._workers: list[threading.Thread] = []
        self._exchanges: list[RawExchange] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="broken-upstream", daemon=True)

    def base_url(self, behaviour: str) -> str:
        return f"http://127.0.0.1:{self.port}/{behaviour}/v1"

    def __enter__(self) -> Self:
        self._acceptor.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._acceptor.join(5)
        with self._cond:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for worker in self._workers:
            worker.join(5)
        self._listener.close()

    def wait_for(self, request_id: str, timeout: float = 5.0) -> RawExchange:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for exchange in self._exchanges:
                    if exchange.request_id == request_id:
                        return exchange
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the broken upstream received no request {request_id!r}")
                self._cond.wait(remaining)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._cond:
                self._open.add(conn)
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._workers.append(worker)
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(HOLD_OPEN_S)
            headers = _read_request(conn)
            behaviour = headers[":path"].split("/")[1]
            exchange = RawExchange(behaviour, headers.get("x-request-id"))
            with self._cond:
                self._exchanges.append(exchange)
                self._cond.notify_all()
            reply = self._replies.get(behaviour)
            if reply is None:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            for i, part in enumerate(reply.parts):
                if i and self._stopping.wait(PAUSE_S):
                    return
                conn.sendall(part)
            if reply.hold_open:
                try:
                    while conn.recv(65536):
                        pass
                except TimeoutError:
                    return
                except OSError:
                    pass  # reset by the peer: closed as well
                if not self._stopping.is_set():
                    exchange.peer_closed.set()
        except OSError:
            pass
        finally:
            with self._cond:
                self._open.discard(conn)
            conn.close()


# -- the gateway of this module: small body limit, wildcard models, odd upstreams --------------------


@pytest.fixture(scope="module")
def idle_upstream() -> Iterator[MockUpstream]:
    """A mock that closes keep-alive connections idle for IDLE_CLOSE_S."""
    with MockUpstream(keepalive_timeout=IDLE_CLOSE_S) as mock:
        yield mock


@pytest.fixture(scope="module")
def broken() -> Iterator[BrokenUpstream]:
    with BrokenUpstream({**BROKEN_REPLIES, **ODD_REPLIES}) as server:
        yield server


@pytest.fixture(scope="module")
def edges_gateway(
    upstream: MockUpstream,
    refused: RefusedPort,
    idle_upstream: MockUpstream,
    broken: BrokenUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    """The standard config plus: ``server.max_body_bytes`` SMALL_LIMIT, ``up/*`` (any model at the mock),
    ``idle-test`` (the upstream that closes idle connections), ``broken-<reply>`` and ``odd-<reply>``
    for each scripted reply (long timeouts, so a hang shows as one)."""
    config = standard_config(upstream.base_url, refused.base_url, max_body_bytes=SMALL_LIMIT)
    config["providers"] += [
        {"name": "idle", "kind": "openai", "base_url": idle_upstream.base_url, "api_key": "sk-idle"},
        *(
            {"name": f"raw-{name}", "kind": "openai", "base_url": broken.base_url(name), "api_key": "sk-raw"}
            for name in [*BROKEN_REPLIES, *ODD_REPLIES]
        ),
    ]
    config["models"] += [
        {"name": "up/*", "deployments": [{"provider": "up", "model": "*"}], "timeouts": dict(FAST)},
        {
            "name": "idle-test",
            "deployments": [{"provider": "idle", "model": "upstream-model-1"}],
            "timeouts": dict(FAST),
        },
        *(
            {
                "name": f"broken-{name}",
                "deployments": [{"provider": f"raw-{name}", "model": "raw-model"}],
                "timeouts": dict(SLOW),
            }
            for name in BROKEN_REPLIES
        ),
        *(
            {
                "name": f"odd-{name}",
                "deployments": [{"provider": f"raw-{name}", "model": "raw-model"}],
                "timeouts": dict(SLOW),
            }
            for name in ODD_REPLIES
        ),
    ]
    workdir: Path = tmp_path_factory.mktemp("edges")
    path = write_config(config, workdir / "gatecore.yaml")
    with running_gateway(["--config", str(path)], workdir, config=config) as gw:
        yield gw


# -- GET /v1/models/{id} ---------------------------------------------------------------------------


def test_retrieve_model_sdk(client: openai.OpenAI) -> None:
    model = client.models.retrieve("gpt-test")
    assert model.id == "gpt-test"
    assert model.object == "model"
    assert isinstance(model.owned_by, str)
    assert isinstance(model.created, int)


@pytest.mark.parametrize("model", sorted(STANDARD_MODELS))
def test_retrieve_every_listed_model(gateway: Gateway, model: str) -> None:
    resp = raw_http.request(gateway.port, "GET", f"/v1/models/{model}", headers=_auth())
    assert resp.status == 200, resp.body[:300]
    assert (resp.header("content-type") or "").startswith("application/json")
    obj = resp.json()
    assert obj["id"] == model
    assert obj["object"] == "model"


def test_retrieve_model_allowed_for_key(gateway: Gateway) -> None:
    with make_client(gateway, TEAM_KEY) as c:
        assert c.models.retrieve("gpt-test").id == "gpt-test"


@pytest.mark.parametrize("model", sorted(STANDARD_MODELS - TEAM_MODELS))
def test_retrieve_model_not_allowed_for_key_is_404(gateway: Gateway, model: str) -> None:
    """A model the key may not use does not exist for it."""
    resp = raw_http.request(gateway.port, "GET", f"/v1/models/{model}", headers=_auth(TEAM_KEY))
    _assert_error(resp, 404, "model_not_found")
    with make_client(gateway, TEAM_KEY) as c, pytest.raises(openai.NotFoundError) as info:
        c.models.retrieve(model)
    assert info.value.code == "model_not_found"


@pytest.mark.parametrize("model", ["no-such-model", "upstream-model-1", "GPT-TEST", "gpt-test-2"])
def test_retrieve_unknown_model_is_404(gateway: Gateway, model: str) -> None:
    resp = raw_http.request(gateway.port, "GET", f"/v1/models/{model}", headers=_auth())
    _assert_error(resp, 404, "model_not_found")


def test_retrieve_unknown_model_sdk(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    assert info.value.status_code == 404


@pytest.mark.parametrize(
    ("headers", "code"),
    [([], "missing_api_key"), (_auth(BOGUS_KEY), "invalid_api_key")],
    ids=["no-key", "bogus-key"],
)
def test_retrieve_model_needs_a_valid_key(
    gateway: Gateway, headers: list[tuple[str, str]], code: str
) -> None:
    """401 before anything about models is revealed, for real and made-up models alike."""
    for model in ("gpt-test", "no-such-model"):
        resp = raw_http.request(gateway.port, "GET", f"/v1/models/{model}", headers=headers)
        _assert_error(resp, 401, code)


# -- x-api-key -------------------------------------------------------------------------------------


def test_x_api_key_chat(gateway: Gateway, upstream: MockUpstream) -> None:
    rid = new_request_id()
    headers = [("x-api-key", MASTER_KEY), ("Content-Type", "application/json"), ("x-request-id", rid)]
    body = json.dumps(_chat_body("gpt-test", "via x-api-key")).encode()
    resp = raw_http.request(gateway.port, "POST", CHAT, body, headers)
    assert resp.status == 200, resp.body[:300]
    obj = resp.json()
    assert obj["model"] == "gpt-test"
    assert obj["choices"][0]["message"]["content"] == "mock: via x-api-key"
    sent = upstream.wait_for(rid)
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}", "the provider's key, not the client's"
    assert "x-api-key" not in sent.headers
    assert MASTER_KEY.encode() not in sent.body


def test_x_api_key_stream(gateway: Gateway) -> None:
    rid = new_request_id()
    headers = [("x-api-key", MASTER_KEY), ("Content-Type", "application/json"), ("x-request-id", rid)]
    body = json.dumps(_chat_body("gpt-test", "streamed via x-api-key", stream=True)).encode()
    result = raw_http.read_stream(gateway.port, CHAT, body, headers)
    assert result.status == 200
    assert result.ended
    assert result.data[-1] == b"[DONE]"
    text = "".join(json.loads(d)["choices"][0]["delta"].get("content") or "" for d in result.data[:-1])
    assert text == "mock: streamed via x-api-key"


def test_x_api_key_scope_applies(gateway: Gateway) -> None:
    for model, status in (("gpt-test", 200), ("gpt-other", 403), ("no-such-model", 404)):
        headers = [("x-api-key", TEAM_KEY), ("Content-Type", "application/json")]
        resp = raw_http.request(gateway.port, "POST", CHAT, json.dumps(_chat_body(model)).encode(), headers)
        assert resp.status == status, (model, resp.body[:300])


def test_x_api_key_models(gateway: Gateway) -> None:
    resp = raw_http.request(gateway.port, "GET", "/v1/models", headers={"x-api-key": TEAM_KEY})
    assert resp.status == 200
    assert {m["id"] for m in resp.json()["data"]} == TEAM_MODELS
    resp = raw_http.request(gateway.port, "GET", "/v1/models/gpt-test", headers={"x-api-key": TEAM_KEY})
    assert resp.status == 200
    assert resp.json()["id"] == "gpt-test"


@pytest.mark.parametrize("key", [BOGUS_KEY, MASTER_KEY + "x", TEAM_KEY[:-1]])
def test_wrong_x_api_key_is_401(gateway: Gateway, upstream: MockUpstream, key: str) -> None:
    rid = new_request_id()
    headers = [("x-api-key", key), ("Content-Type", "application/json"), ("x-request-id", rid)]
    resp = raw_http.request(gateway.port, "POST", CHAT, json.dumps(_chat_body("gpt-test")).encode(), headers)
    _assert_error(resp, 401, "invalid_api_key")
    assert key.encode() not in resp.body
    for path in ("/v1/models", "/v1/models/gpt-test"):
        resp = raw_http.request(gateway.port, "GET", path, headers={"x-api-key": key})
        _assert_error(resp, 401, "invalid_api_key")
    assert not upstream.received(rid)


# -- keep-alive with upstreams that close ----------------------------------------------------------


def test_mock_close_knob_sends_connection_close(upstream: MockUpstream) -> None:
    """The knob itself: the mock answers ``Connection: close`` and closes."""
    conn = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=10)
    try:
        body = json.dumps(_chat_body("upstream-model-1", mock={"close": True})).encode()
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        assert (resp.getheader("connection") or "").lower() == "close"
    finally:
        conn.close()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_upstream_connection_close_alternating(
    client: openai.OpenAI, upstream: MockUpstream, stream: bool
) -> None:
    """20 requests in a row, every other one answered with ``Connection: close``: all succeed."""
    ports: list[int | None] = []
    for i in range(20):
        rid = new_request_id()
        extra: dict[str, Any] = {"mock": {"close": i % 2 == 0}}
        headers = {"x-request-id": rid}
        if stream:
            chunks = client.chat.completions.create(
                model="gpt-test",
                messages=user(f"ping {i}"),
                stream=True,
                extra_body=extra,
                extra_headers=headers,
            )
            with chunks:
                text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            completion = client.chat.completions.create(
                model="gpt-test", messages=user(f"ping {i}"), extra_body=extra, extra_headers=headers
            )
            text = completion.choices[0].message.content or ""
        assert text == f"mock: ping {i}"
        ports.append(upstream.wait_for(rid).peer_port)
    # Each request after a closed connection came over a new one.
    for i in range(0, 18, 2):
        assert ports[i + 1] != ports[i], f"request {i + 1} reused the connection closed by request {i}"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_upstream_closes_idle_pooled_connection(
    edges_gateway: Gateway, idle_upstream: MockUpstream, stream: bool
) -> None:
    """The upstream closes a pooled connection while it is idle: the next request still gets 200, not
    502 (the stale connection is dropped or the request resent on a new one)."""
    ports: list[int | None] = []
    for i in range(4):
        if i:
            time.sleep(IDLE_CLOSE_S + 0.5)
        rid = new_request_id()
        body = _chat_body("idle-test", f"after idle {i}", stream=stream)
        if stream:
            result = _stream(edges_gateway, body, rid)
            assert result.status == 200, f"request {i}"
            assert result.ended
            assert result.data[-1] == b"[DONE]"
            assert not any(b'"error"' in d for d in result.data), result.data[-2:]
        else:
            resp = raw_http.post_json(
                edges_gateway.port, CHAT, body, MASTER_KEY, extra_headers={"x-request-id": rid}
            )
            assert resp.status == 200, (i, resp.body[:300])
            assert resp.json()["choices"][0]["message"]["content"] == f"mock: after idle {i}"
        ports.append(idle_upstream.wait_for(rid).peer_port)
    assert len(set(ports)) == len(ports), "the upstream closed each idle connection: no reuse possible"


def test_upstream_keeps_alive_between_quick_requests(
    edges_gateway: Gateway, idle_upstream: MockUpstream
) -> None:
    """Control for the test above: back to back requests do reuse the pooled connection."""
    ports: list[int | None] = []
    for i in range(5):
        rid = new_request_id()
        resp = raw_http.post_json(
            edges_gateway.port, CHAT, _chat_body("idle-test", f"quick {i}"), MASTER_KEY,
            extra_headers={"x-request-id": rid},
        )  # fmt: skip
        assert resp.status == 200
        ports.append(idle_upstream.wait_for(rid).peer_port)
    assert len(set(ports)) < len(ports)


# -- a whole stream in one write -------------------------------------------------------------------


@pytest.mark.parametrize("no_done", [False, True], ids=["done", "no-done"])
@pytest.mark.parametrize("include_usage", [False, True], ids=["usage-hidden", "usage-asked"])
def test_whole_stream_in_one_write_sdk(
    client: openai.OpenAI, upstream: MockUpstream, include_usage: bool, no_done: bool
) -> None:
    rid = new_request_id()
    options: ChatCompletionStreamOptionsParam | openai.Omit = (
        {"include_usage": True} if include_usage else openai.omit
    )
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=user("all at once"),
        stream=True,
        stream_options=options,
        extra_body={"mock": {"all_at_once": True, "chunks": 12, "no_done": no_done}},
        extra_headers={"x-request-id": rid},
    )
    with stream:
        chunks = list(stream)
    sent = upstream.wait_for(rid)
    assert sent.body_json["stream_options"] == {"include_usage": True}, "gatecore asks for usage"
    assert (sent.events[-1] == b"[DONE]") is not no_done
    assert {c.model for c in chunks} == {"gpt-test"}
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert deltas == [f"tok{i} " for i in range(12)]
    assert chunks[0].choices[0].delta.role == "assistant"
    usage_chunks = [c for c in chunks if not c.choices]
    if include_usage:
        assert len(usage_chunks) == 1
        assert usage_chunks[0] is chunks[-1]
        assert usage_chunks[0].usage is not None
        assert usage_chunks[0].usage.completion_tokens == 12
        assert chunks[-2].choices[0].finish_reason == "stop"
    else:
        assert not usage_chunks, "the usage chunk gatecore asked for is hidden"
        assert all(c.usage is None for c in chunks)
        assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("no_done", [False, True], ids=["done", "no-done"])
@pytest.mark.parametrize("all_at_once", [False, True], ids=["chunked", "one-write"])
def test_stream_events_raw(
    gateway: Gateway, upstream: MockUpstream, all_at_once: bool, no_done: bool
) -> None:
    """On the wire: every event relayed in order with the client's model name, ``[DONE]`` relayed
    when the upstream sent it, and the body ends either way."""
    rid = new_request_id()
    mock = {"all_at_once": all_at_once, "no_done": no_done, "chunks": 5}
    result = _stream(gateway, _chat_body("gpt-test", stream=True, mock=mock), rid)
    assert result.status == 200
    assert result.ended, f"the stream did not end (waited {result.elapsed:.1f} s)"
    sent = upstream.wait_for(rid)
    expected = [e for e in sent.event_objects() if e["choices"]]  # the usage chunk is hidden
    assert (result.data[-1] == b"[DONE]") is not no_done
    events = [json.loads(d) for d in result.data if d != b"[DONE]"]
    assert [e["model"] for e in events] == ["gpt-test"] * len(expected)

    def comparable(event: dict[str, Any]) -> dict[str, Any]:
        # `"usage": null` rides along on every chunk of a stream that asked for usage.
        return {k: v for k, v in event.items() if k not in ("model", "usage")}

    assert [comparable(e) for e in events] == [comparable(e) for e in expected]


def test_whole_stream_in_one_write_headers(gateway: Gateway) -> None:
    rid = new_request_id()
    headers = [*_auth(), ("x-request-id", rid)]
    body = json.dumps(_chat_body("gpt-test", stream=True, mock={"all_at_once": True})).encode()
    with raw_http.RawStream(gateway.port, CHAT, body, headers, timeout=10) as stream:
        assert stream.status == 200
        assert (stream.header("content-type") or "").startswith("text/event-stream")
        assert stream.header("x-gatecore-model") == "up/upstream-model-1"
        assert stream.header("x-request-id") == rid
        data = [e.data for e in stream.events()]
    assert data[-1] == b"[DONE]"
    assert (
        "".join(json.loads(d)["choices"][0]["delta"].get("content") or "" for d in data[:-1]) == "mock: edge"
    )


# -- a stream request answered with JSON -----------------------------------------------------------


def test_stream_request_answered_with_json(gateway: Gateway, upstream: MockUpstream) -> None:
    rid = new_request_id()
    body = _chat_body("gpt-test", "json please", stream=True, mock={"no_stream": True})
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        conn.request("POST", CHAT, json.dumps(body).encode(), {**dict(_auth()), "x-request-id": rid})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    assert resp.status == 200, data[:300]
    assert (resp.getheader("content-type") or "").startswith("application/json")
    assert resp.getheader("x-gatecore-model") == "up/upstream-model-1"
    obj = json.loads(data)
    assert obj["object"] == "chat.completion"
    assert obj["model"] == "gpt-test"
    assert obj["choices"][0]["message"]["content"] == "mock: json please"
    sent = upstream.wait_for(rid)
    assert sent.body_json["stream"] is True
    assert sent.body_json["model"] == "upstream-model-1"
    assert obj == {**sent.response_json, "model": "gpt-test"}


# -- an upstream speaking broken HTTP --------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("behaviour", INVALID_HEADS)
def test_broken_http_is_502(
    edges_gateway: Gateway, broken: BrokenUpstream, behaviour: str, stream: bool
) -> None:
    rid = new_request_id()
    resp = raw_http.post_json(
        edges_gateway.port, CHAT, _chat_body(f"broken-{behaviour}", stream=stream), MASTER_KEY,
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    error = _assert_error(resp, 502, "upstream_protocol_error")
    assert error["type"] == "upstream_error"
    broken.wait_for(rid)
    assert raw_http.post_json(edges_gateway.port, CHAT, _chat_body("gpt-test"), MASTER_KEY).status == 200


def test_invalid_chunk_in_whole_body_is_502(edges_gateway: Gateway, broken: BrokenUpstream) -> None:
    rid = new_request_id()
    started = time.monotonic()
    resp = raw_http.post_json(
        edges_gateway.port, CHAT, _chat_body("broken-bad-chunk-json"), MASTER_KEY,
        extra_headers={"x-request-id": rid},
    )  # fmt: skip
    _assert_error(resp, 502, "upstream_protocol_error")
    assert time.monotonic() - started < 5, "answered at once, not after a timeout"
    assert broken.wait_for(rid).peer_closed.wait(5), "the gateway dropped the broken upstream connection"


def test_invalid_chunk_mid_stream_ends_with_error_event(
    edges_gateway: Gateway, broken: BrokenUpstream
) -> None:
    rid = new_request_id()
    result = _stream(edges_gateway, _chat_body("broken-bad-chunk-sse", stream=True), rid)
    assert result.status == 200
    assert result.ended, (
        f"the stream stayed open after the broken chunk (waited {result.elapsed:.1f} s; "
        f"events: {result.data!r})"
    )
    assert result.elapsed < 5
    assert len(result.events) == 2, result.data
    first = json.loads(result.events[0].data)
    assert first["model"] == "broken-bad-chunk-sse"
    assert first["choices"][0]["delta"]["content"] == "first"
    error = json.loads(result.events[1].data)["error"]
    assert error["code"] == "upstream_stream_error"
    assert {"message", "type", "param", "code"} <= set(error)
    assert broken.wait_for(rid).peer_closed.wait(5), "the gateway dropped the broken upstream connection"


def test_invalid_chunk_mid_stream_sdk(edges_gateway: Gateway) -> None:
    started = time.monotonic()
    seen: list[str] = []
    with make_client(edges_gateway) as c, pytest.raises(openai.APIError) as info:
        stream = c.chat.completions.create(model="broken-bad-chunk-sse", messages=user("x"), stream=True)
        with stream:
            seen.extend(chunk.choices[0].delta.content or "" for chunk in stream)
    assert seen == ["first"]
    assert "upstream" in info.value.message.lower()
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("name", ["eof-json", "split-head"])
def test_odd_but_valid_whole_body(edges_gateway: Gateway, broken: BrokenUpstream, name: str) -> None:
    rid = new_request_id()
    resp = raw_http.post_json(
        edges_gateway.port, CHAT, _chat_body(f"odd-{name}"), MASTER_KEY, extra_headers={"x-request-id": rid}
    )
    assert resp.status == 200, resp.body[:300]
    obj = resp.json()
    assert obj == {**json.loads(_ODD_JSON), "model": f"odd-{name}"}
    broken.wait_for(rid)


def test_stream_body_until_eof(edges_gateway: Gateway, broken: BrokenUpstream) -> None:
    rid = new_request_id()
    result = _stream(edges_gateway, _chat_body("odd-eof-sse", stream=True), rid)
    assert result.status == 200
    assert result.ended
    assert result.data[-1] == b"[DONE]"
    events = [json.loads(d) for d in result.data[:-1]]
    assert all("error" not in e for e in events), events
    assert {e["model"] for e in events} == {"odd-eof-sse"}
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events) == "until eof"
    broken.wait_for(rid)


# -- chunked client bodies and the size limit ------------------------------------------------------


def _sized_body(size: int) -> bytes:
    """A valid chat body of exactly ``size`` bytes."""
    envelope = json.dumps(_chat_body("gpt-test", "")).encode()
    body = json.dumps(_chat_body("gpt-test", "p" * (size - len(envelope)))).encode()
    assert len(body) == size
    return body


def _chunked(data: bytes, size: int) -> bytes:
    return b"".join(_chunk(data[i : i + size]) for i in range(0, len(data), size)) + b"0\r\n\r\n"


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
@pytest.mark.parametrize(
    ("size", "status"),
    [(300, 200), (SMALL_LIMIT, 200), (SMALL_LIMIT + 1, 413), (3 * SMALL_LIMIT, 413)],
)
def test_body_size_limit(
    edges_gateway: Gateway, upstream: MockUpstream, size: int, status: int, chunked: bool
) -> None:
    rid = new_request_id()
    body = _sized_body(size)
    headers = [*_auth(), ("x-request-id", rid)]
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
        raw = raw_http.build_request(
            "POST", CHAT, edges_gateway.port, _chunked(body, 1000), headers, content_length=False
        )
    else:
        raw = raw_http.build_request("POST", CHAT, edges_gateway.port, body, headers)
    resp = raw_http.exchange(edges_gateway.port, raw, timeout=10)
    if status == 413:
        _assert_error(resp, 413, "body_too_large")
        assert not upstream.received(rid)
        return
    assert resp.status == 200, resp.body[:300]
    sent = upstream.wait_for(rid)
    assert sent.body == body.replace(b'"gpt-test"', b'"upstream-model-1"', 1), "the body bytes pass through"


def test_slow_chunked_upload(edges_gateway: Gateway, upstream: MockUpstream) -> None:
    """A chunked body that arrives in pieces over time (http.client picks chunked for an iterator)."""
    rid = new_request_id()
    body = _sized_body(2000)

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(body), 300):
            yield body[i : i + 300]
            time.sleep(0.03)

    conn = http.client.HTTPConnection("127.0.0.1", edges_gateway.port, timeout=10)
    try:
        conn.request("POST", CHAT, pieces(), {**dict(_auth()), "x-request-id": rid})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    assert resp.status == 200, data[:300]
    assert upstream.wait_for(rid).body_json["messages"] == json.loads(body)["messages"]


# -- wildcard model names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "upstream_model"),
    [("up/foo", "foo"), ("up/org/model-x", "org/model-x"), ("up/upstream-model-1", "upstream-model-1")],
)
def test_wildcard_model(
    edges_gateway: Gateway, upstream: MockUpstream, model: str, upstream_model: str
) -> None:
    rid = new_request_id()
    with make_client(edges_gateway) as c:
        raw = c.chat.completions.with_raw_response.create(
            model=model, messages=user("wild"), extra_headers={"x-request-id": rid}
        )
    completion = raw.parse()
    assert completion.model == model
    assert completion.choices[0].message.content == "mock: wild"
    assert raw.headers["x-gatecore-model"] == f"up/{upstream_model}"
    sent = upstream.wait_for(rid)
    assert sent.body_json["model"] == upstream_model
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_wildcard_model_stream(edges_gateway: Gateway, upstream: MockUpstream) -> None:
    rid = new_request_id()
    with make_client(edges_gateway) as c:
        stream = c.chat.completions.create(
            model="up/foo", messages=user("wild stream"), stream=True, extra_headers={"x-request-id": rid}
        )
        with stream:
            chunks = list(stream)
    assert {ch.model for ch in chunks} == {"up/foo"}
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "mock: wild stream"
    assert upstream.wait_for(rid).body_json["model"] == "foo"


@pytest.mark.parametrize("model", ["up/", "up", "up*", "upx/foo", "/foo"])
def test_wildcard_prefix_alone_is_404(edges_gateway: Gateway, upstream: MockUpstream, model: str) -> None:
    rid = new_request_id()
    resp = raw_http.post_json(
        edges_gateway.port, CHAT, _chat_body(model), MASTER_KEY, extra_headers={"x-request-id": rid}
    )
    _assert_error(resp, 404, "model_not_found")
    assert not upstream.received(rid)


def test_wildcard_retrieve_model(edges_gateway: Gateway) -> None:
    resp = raw_http.request(edges_gateway.port, "GET", "/v1/models/up/foo", headers=_auth())
    assert resp.status == 200, resp.body[:300]
    assert resp.json()["id"] == "up/foo"
    resp = raw_http.request(edges_gateway.port, "GET", "/v1/models/up/", headers=_auth())
    _assert_error(resp, 404, "model_not_found")


def test_wildcard_retrieve_model_sdk(edges_gateway: Gateway) -> None:
    """The SDK percent-encodes the id: ``GET /v1/models/up%2Ffoo`` is the model ``up/foo``."""
    with make_client(edges_gateway) as c:
        assert c.models.retrieve("up/foo").id == "up/foo"
