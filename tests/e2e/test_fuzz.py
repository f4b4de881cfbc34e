"""Malformed requests by the thousand: every answer is a 4xx (JSON error where the app answers), never a
5xx, never a hang, and the server still serves afterwards. Loops are bounded in count and time."""

from __future__ import annotations

import json
import random
import socket
import string
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import openai
import pytest

from . import raw_http
from .conftest import make_client
from .gateway import MASTER_KEY, TEAM_KEY, Gateway

SEED = 20250101
CASES = 2500
TIME_BUDGET_S = 40.0
PER_REQUEST_TIMEOUT_S = 5.0
ENDPOINTS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]
# Statuses hyper/granian answer themselves (no JSON body possible) for HTTP it cannot parse.
PROTOCOL_STATUSES = {400, 413, 414, 431}


@dataclass
class Case:
    kind: str
    data: bytes
    """The whole request, bytes on the wire."""
    protocol_abuse: bool = False
    """Broken HTTP: the HTTP layer may answer without JSON, or close."""
    half_close: bool = False
    """Shut the write side after sending (the body is shorter than announced)."""


def _valid_chat(rng: random.Random) -> dict[str, Any]:
    return {
        "model": "gpt-test",
        "messages": [
            {"role": "user", "content": "".join(rng.choices(string.ascii_letters, k=rng.randint(1, 20)))}
        ],
        "stream": rng.random() < 0.5,
    }


def _post(port: int, body: bytes, path: str = "/v1/chat/completions", key: str | None = MASTER_KEY) -> bytes:
    headers = [("Content-Type", "application/json")]
    if key is not None:
        headers.append(("Authorization", f"Bearer {key}"))
    return raw_http.build_request("POST", path, port, body, headers)


def _random_json_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randint(0, 7 if depth < 3 else 4)
    if choice == 0:
        return None
    if choice == 1:
        return rng.random() < 0.5
    if choice == 2:
        return rng.randint(-(2**70), 2**70)
    if choice == 3:
        return rng.uniform(-1e308, 1e308)
    if choice == 4:
        return "".join(rng.choices(string.printable, k=rng.randint(0, 12)))
    if choice == 5:
        return [_random_json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {
        "".join(rng.choices(string.ascii_lowercase, k=3)): _random_json_value(rng, depth + 1)
        for _ in range(rng.randint(0, 3))
    }


# -- generators: each returns a request that must be refused ---------------------------------------------


def gen_random_bytes(rng: random.Random, port: int) -> Case:
    body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 400)))
    return Case("random-bytes", _post(port, body, rng.choice(ENDPOINTS)))


def gen_truncated_json(rng: random.Random, port: int) -> Case:
    text = json.dumps(_valid_chat(rng)).encode()
    return Case("truncated-json", _post(port, text[: rng.randint(0, len(text) - 1)], rng.choice(ENDPOINTS)))


def gen_huge_numbers(rng: random.Random, port: int) -> Case:
    number = rng.choice(
        ["1" * rng.randint(20, 5000), "1e999999", "-1e400", "9" * 400 + ".5e-99999", "0." + "0" * 5000 + "1"]
    )
    templates = [
        '{"model": %s, "messages": []}',
        "%s",
        '{"model": "gpt-test", "messages": [{"role": "user", "content": "x"}], "stream": %s}',
        '{"model": "no-such-model", "max_tokens": %s, "messages": []}',
        '[%s, {"model": "gpt-test"}]',
    ]
    return Case("huge-numbers", _post(port, (rng.choice(templates) % number).encode()))


def gen_deep_nesting(rng: random.Random, port: int) -> Case:
    depth = rng.choice([64, 600, 1100, 5000, 100_000])
    open_, close = rng.choice([("[", "]"), ('{"a":', "}")])
    nested = open_ * depth + "1" + close * depth
    templates = [
        "%s",
        '{"model": "gpt-test", "messages": %s}',
        '{"model": %s, "messages": []}',
        '{"model": "no-such-model", "extra": %s}',
    ]
    return Case("deep-nesting", _post(port, (rng.choice(templates) % nested).encode()))


def gen_wrong_types(rng: random.Random, port: int) -> Case:
    """model, stream or messages of the wrong type (at least one of them), or no model at all."""
    body: dict[str, Any] = _valid_chat(rng)
    for name in rng.sample(["model", "stream", "messages"], rng.randint(1, 3)):
        while not _is_wrong(name, value := _random_json_value(rng)):
            pass
        body[name] = value
    if rng.random() < 0.2:
        del body["model"]
    return Case("wrong-types", _post(port, json.dumps(body).encode()))


def _is_wrong(name: str, value: Any) -> bool:
    if name == "model":
        return not isinstance(value, str)
    if name == "stream":
        return value is not None and not isinstance(value, bool)
    # messages: anything but a non-empty list of objects with a string role
    return not (
        isinstance(value, list)
        and value
        and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in value)
    )


def gen_bad_utf8(rng: random.Random, port: int) -> Case:
    bad = rng.choice(
        [b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf"]
    )
    templates = [
        b'{"model": "gpt-%s", "messages": []}',
        b'{"model": "gpt-test", "messages": [{"role": "user", "content": "a%sb"}]}',
        b'{"model": "gpt-test", "%s": 1, "messages": [{"role": "user", "content": "x"}]}',
        b"%s",
    ]
    return Case("bad-utf8", _post(port, rng.choice(templates) % bad))


def gen_nul_bytes(rng: random.Random, port: int) -> Case:
    bodies = [
        b'{"model": "gpt-test\x00", "messages": []}',
        b'{"model": "gpt-test", "messages": [{"role": "user", "content": "a\x00b"}]}',
        b"\x00" * rng.randint(1, 100),
        b'{"model": "gpt\\u0000test", "messages": [{"role": "user", "content": "x"}]}',
        b'\x00{"model": "gpt-test"}',
    ]
    return Case("nul-bytes", _post(port, rng.choice(bodies)))


def gen_bad_path(rng: random.Random, port: int) -> Case:
    alphabet = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/%"
    segment = "".join(rng.choices(alphabet, k=rng.randint(1, 40)))
    encoded = "".join(f"%{b:02X}" for b in bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 10))))
    path = rng.choice(
        [
            "/" + segment,
            "/v1/" + segment,
            "/v1/chat/completions/" + segment,
            "/v1/" + encoded,
            "//v1//chat//completions",
            "/v1/../v1/models/" + segment,
            "/" + "a/" * rng.randint(50, 500),
            "/v1/%00",
            "/v1/chat%2Fcompletions",
        ]
    )
    method = rng.choice(["GET", "POST", "PUT", "DELETE"])
    # An unknown model: even a path the server normalises to a real route must not succeed.
    body = (
        json.dumps({"model": "no-such-model", "messages": []}).encode() if method in ("POST", "PUT") else None
    )
    headers = [("Authorization", f"Bearer {MASTER_KEY}"), ("Content-Type", "application/json")]
    return Case("bad-path", raw_http.build_request(method, path, port, body, headers))


def gen_query_abuse(rng: random.Random, port: int) -> Case:
    junk = "".join(
        rng.choices(string.ascii_letters + string.digits + "-._~=&%;+,?/@!$'()*:", k=rng.randint(1, 800))
    )
    choice = rng.randint(0, 2)
    if choice == 0:  # no key
        return Case("query-abuse", raw_http.build_request("GET", "/v1/models?" + junk, port))
    if choice == 1:  # bad body
        return Case("query-abuse", _post(port, b"{not json", "/v1/chat/completions?" + junk))
    body = json.dumps({"model": "no-such-model", "messages": []}).encode()
    return Case("query-abuse", _post(port, body, rng.choice(ENDPOINTS) + "?" + junk + "&model=gpt-test"))


def gen_auth_abuse(rng: random.Random, port: int) -> Case:
    body = json.dumps(_valid_chat(rng)).encode()
    value = rng.choice(
        [
            "Bearer " + "k" * rng.randint(1, 6000),
            "Bearer " + MASTER_KEY + " extra",
            "bearer",
            "Bearer\t" + "sk-nope",
            "Token " + MASTER_KEY[::-1],
            "Bearer " + "".join(rng.choices(string.punctuation, k=30)),
            "Bearer sk-\u00e9\u00e8",
        ]
    )
    headers = [("Content-Type", "application/json"), ("Authorization", value)]
    if rng.random() < 0.2:  # a key that may not use the model and a bogus one: two Authorization headers
        headers.append(("Authorization", f"Bearer {TEAM_KEY}x"))
    return Case("auth-abuse", raw_http.build_request("POST", "/v1/chat/completions", port, body, headers))


def gen_header_abuse(rng: random.Random, port: int) -> Case:
    """Broken HTTP, only possible over a raw socket. The model is unknown, so a request the HTTP layer
    does accept gets a JSON 404."""
    body = json.dumps({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}).encode()
    auth = f"Authorization: Bearer {MASTER_KEY}\r\n".encode()
    host = f"Host: 127.0.0.1:{port}\r\n".encode()
    start = b"POST /v1/chat/completions HTTP/1.1\r\n"
    close = b"Connection: close\r\n"
    cl = f"Content-Length: {len(body)}\r\n".encode()
    variants: list[Callable[[], bytes]] = [
        lambda: (
            start
            + host
            + close
            + b"X-Long: "
            + b"a" * rng.randint(70_000, 200_000)
            + b"\r\n"
            + cl
            + auth
            + b"\r\n"
            + body
        ),
        lambda: start + host + close + b"Bad Header: x\r\n" + cl + auth + b"\r\n" + body,
        lambda: start + host + close + b"X-\xff\xfe: y\r\n" + cl + auth + b"\r\n" + body,
        lambda: start + host + close + b": empty-name\r\n" + cl + auth + b"\r\n" + body,
        lambda: start + host + close + b"X-Ctl: a\x00b\r\n" + cl + auth + b"\r\n" + body,
        lambda: (
            start
            + host
            + close
            + b"".join(b"X-H%d: v\r\n" % i for i in range(rng.randint(150, 400)))
            + cl
            + auth
            + b"\r\n"
            + body
        ),
        lambda: start + host + close + b"Content-Length: abc\r\n" + auth + b"\r\n" + body,
        lambda: start + host + close + b"Content-Length: -5\r\n" + auth + b"\r\n" + body,
        lambda: (
            start
            + host
            + close
            + cl
            + f"Content-Length: {len(body) + 3}\r\n".encode()
            + auth
            + b"\r\n"
            + body
        ),
        lambda: (
            start + host + close + f"Content-Length: {len(body) + 3}\r\n".encode() + auth + b"\r\n" + body
        ),
        lambda: start + host + close + b"Content-Length: 99999999999999999999999\r\n" + auth + b"\r\n" + body,
        lambda: start + host + close + b"Transfer-Encoding: chunked\r\n" + cl + auth + b"\r\n" + body,
        lambda: (
            start
            + host
            + close
            + b"Transfer-Encoding: chunked\r\n"
            + auth
            + b"\r\nzz\r\n"
            + body
            + b"\r\n0\r\n\r\n"
        ),
        lambda: (
            start
            + host
            + close
            + f"Content-Length: {max(len(body) - 7, 0)}\r\n".encode()
            + auth
            + b"\r\n"
            + body
        ),
        lambda: b"POST /v1/chat/completions HTTP/1.1\n" + host + close + cl + auth + b"\n" + body,
        lambda: b"POST  /v1/chat/completions  HTTP/1.1\r\n" + host + close + cl + auth + b"\r\n" + body,
        lambda: b"P\x00ST /v1/chat/completions HTTP/1.1\r\n" + host + close + cl + auth + b"\r\n" + body,
        lambda: b"POST /v1/chat/\x7fcompletions HTTP/1.1\r\n" + host + close + cl + auth + b"\r\n" + body,
        lambda: (
            b"POST /"
            + b"p" * rng.randint(70_000, 120_000)
            + b" HTTP/1.1\r\n"
            + host
            + close
            + cl
            + auth
            + b"\r\n"
            + body
        ),
        lambda: start + host + close + b"X-Fold: a\r\n  folded\r\n" + cl + auth + b"\r\n" + body,
        lambda: bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300))) + b"\r\n\r\n",
    ]
    index = rng.randrange(len(variants))
    # Variant 9 announces more body than it sends: the client then shuts its side, as a crashed one would.
    return Case("header-abuse", variants[index](), protocol_abuse=True, half_close=index == 9)


GENERATORS: list[tuple[Callable[[random.Random, int], Case], int]] = [
    (gen_random_bytes, 3),
    (gen_truncated_json, 3),
    (gen_huge_numbers, 2),
    (gen_deep_nesting, 1),
    (gen_wrong_types, 4),
    (gen_bad_utf8, 2),
    (gen_nul_bytes, 2),
    (gen_bad_path, 2),
    (gen_query_abuse, 2),
    (gen_auth_abuse, 2),
    (gen_header_abuse, 2),
]


def _send(port: int, case: Case) -> raw_http.RawResponse | None:
    """The response, or None when the server closed without one (allowed for broken HTTP only)."""
    try:
        return raw_http.exchange(port, case.data, timeout=PER_REQUEST_TIMEOUT_S, half_close=case.half_close)
    except raw_http.ConnectionClosed:
        return None
    except (ConnectionResetError, BrokenPipeError):
        return None


def _describe(case: Case) -> str:
    """The request line and the body (or, for broken HTTP, the start of the bytes)."""
    if case.protocol_abuse:
        return repr(case.data[:200])
    head, _, body = case.data.partition(b"\r\n\r\n")
    request_line = head.split(b"\r\n")[0]
    return f"{request_line!r} body={body[:160]!r}"


def _check(case: Case, resp: raw_http.RawResponse | None) -> str | None:
    """What is wrong with the answer, or None."""
    if resp is None:
        return None if case.protocol_abuse else "connection closed without a response"
    if not 400 <= resp.status < 500:
        return f"status {resp.status} {resp.body[:200]!r}"
    is_json = (resp.header("content-type") or "").startswith("application/json")
    if case.protocol_abuse and not is_json and resp.status in PROTOCOL_STATUSES:
        return None  # the HTTP layer refused it before the app saw it
    try:
        obj = resp.json()
        error = obj["error"]
        if not (isinstance(error, dict) and isinstance(error.get("message"), str)):
            raise ValueError("no error.message")
    except (ValueError, KeyError, TypeError) as exc:
        return f"{resp.status} without a JSON error ({exc}): {resp.body[:200]!r}"
    return None


@pytest.mark.timeout(120)
def test_fuzz_requests(gateway: Gateway) -> None:
    rng = random.Random(SEED)
    funcs = [f for f, weight in GENERATORS for _ in range(weight)]
    problems: dict[str, list[str]] = {}
    kinds: Counter[str] = Counter()
    started = time.monotonic()
    for _ in range(CASES):
        if time.monotonic() - started > TIME_BUDGET_S:
            break
        case = rng.choice(funcs)(rng, gateway.port)
        kinds[case.kind] += 1
        try:
            problem = _check(case, _send(gateway.port, case))
        except TimeoutError:
            problem = f"no answer within {PER_REQUEST_TIMEOUT_S} s"
        if problem is not None:
            problems.setdefault(case.kind, []).append(f"{_describe(case)} -> {problem}")
    sent = sum(kinds.values())
    report = [
        f"{kind}: {len(found)} of {kinds[kind]} bad, e.g.\n    " + "\n    ".join(found[:3])
        for kind, found in sorted(problems.items())
    ]
    assert not problems, f"bad answers in {sent} cases:\n" + "\n".join(report)
    assert sent >= 500, f"only {sent} cases ran within {TIME_BUDGET_S} s"
    assert gateway.alive()
    with make_client(gateway) as c:
        after = c.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "after fuzz"}]
        )
    assert after.choices[0].message.content == "mock: after fuzz"


@pytest.mark.timeout(60)
def test_slowloris_does_not_block_others(gateway: Gateway) -> None:
    """Half-sent requests held open do not stop the server answering a normal one."""
    socks: list[socket.socket] = []
    try:
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            socks.append(s)
        with make_client(gateway, timeout=10) as c:
            resp = c.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "slow"}])
        assert resp.choices[0].message.content == "mock: slow"
    finally:
        for s in socks:
            s.close()


def test_sdk_still_fine(client: openai.OpenAI) -> None:
    assert {m.id for m in client.models.list()} >= {"gpt-test"}
