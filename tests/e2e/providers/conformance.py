"""The provider conformance suite: the cases every provider runs, each provider joining through a
table (in the style of TensorZero's tests/e2e/providers).

A provider's test module (``test_<provider>.py`` in this folder) does three things:

- declares ``SUITE = Suite(...)``: the entries of each shared case it runs (model names, what the
  client gets, what the upstream must have received, how to steer the mock into an error or a broken
  stream); a table left empty is a case it does not run;
- adds those cases to its globals (``globals().update(SUITE.tests())``), so pytest collects them in
  that module and their ids name the provider;
- declares ``SETUP = Setup(...)`` (harness.py): its mock upstream, provider config, models and the
  secrets no answer may show; conftest.py makes the module's ``mock``, ``target`` and ``client``
  fixtures from it.

conftest.py parametrizes each imported case by the module's table (one test per entry, the entry's
key as the id). What only one provider does stays in its module as an ordinary test.

Mocks are steered two ways (tests/upstreams/README.md): by model name (``claude/m~status=529``) or by a
script registered for the request id. A ``Steer`` hides which: given the mock and the request id it
returns the model name to send (see ``named`` and ``scripted``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import openai
import pytest

from ...upstreams.mock_server import RecordedRequest
from .. import raw_http
from ..conftest import make_client, new_request_id
from ..gateway import MASTER_KEY, Gateway
from .translated import assert_stream_ended_with_error, collect_tool_calls

__all__ = [
    "BrokenStream",
    "Exchange",
    "Finish",
    "Rejected",
    "Sent",
    "Suite",
    "Target",
    "Tokens",
    "ToolCalls",
    "Translation",
    "UpstreamError",
    "named",
    "scripted",
]

USER: list[Any] = [{"role": "user", "content": "hello there"}]
CHAT = "/v1/chat/completions"


class Scriptable(Protocol):
    def script(self, request_id: str, **options: Any) -> None: ...


Steer = Callable[[Any, str], str]
"""``(mock, request id) -> model name``: prepares the mock's answer to that request."""


def named(model: str) -> Steer:
    """A mock steered by model name (``name~key=value``): nothing to prepare."""
    return lambda _mock, _rid: model


def scripted(model: str, **script: Any) -> Steer:
    """A scripted mock: ``script`` registered for the request id (tests/upstreams/scripted_mock.py)."""

    def steer(mock: Scriptable, rid: str) -> str:
        mock.script(rid, **script)
        return model

    return steer


@dataclass(frozen=True)
class Target:
    """A provider's gateway, its mock upstream, and the secrets no answer nor log may show."""

    gw: Gateway
    mock: Any
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Tokens:
    """Usage the client must get (None: not checked)."""

    prompt: int | None = None
    completion: int | None = None
    cached: int | None = None


@dataclass(frozen=True)
class Sent:
    """What the upstream must have received."""

    path: str | None = None
    query: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    no_headers: Sequence[str] = ()
    body: Mapping[str, Any] = field(default_factory=dict)
    """Each key's value, exactly."""
    whole_body: bool = False
    """``body`` is the whole body: no other key."""
    no_body: Sequence[str] = ()
    check: Callable[[RecordedRequest], None] | None = None
    """Anything else (e.g. the mock's own verdict on a signature)."""

    def verify(self, sent: RecordedRequest) -> None:
        if self.path is not None:
            assert sent.path == self.path
        if self.query is not None:
            assert sent.query == self.query
        for name, value in self.headers.items():
            assert sent.headers.get(name) == value, name
        for name in self.no_headers:
            assert name not in sent.headers
        body = sent.body_json
        if self.whole_body:
            assert body == dict(self.body)
        for key, value in self.body.items():
            assert body.get(key) == value, key
        for key in self.no_body:
            assert key not in body, key
        if self.check is not None:
            self.check(sent)


@dataclass(frozen=True)
class Exchange:
    """A plain request (``test_chat``, ``test_stream``): the reply text, usage and what was sent."""

    model: str
    reply: str
    sent: Sent
    usage: Tokens | Callable[[RecordedRequest], Tokens] = Tokens()
    messages: list[Any] = field(default_factory=lambda: USER)
    params: Mapping[str, Any] = field(default_factory=dict)
    """More request fields."""
    usage_chunk_alone: bool = True
    """Streamed: the usage comes last in a chunk of its own (no choices), as OpenAI sends it; False
    where the gateway relays it on the upstream's last choice chunk (Mistral)."""


@dataclass(frozen=True)
class Finish:
    """The upstream's stop reason (by ``steer``) and the client's finish_reason, whole and streamed."""

    steer: Steer
    finish: str


@dataclass(frozen=True)
class UpstreamError:
    """An upstream error answer: the client's status and the fields of its OpenAI error object."""

    steer: Steer
    status: int
    error: Mapping[str, Any]


@dataclass(frozen=True)
class BrokenStream:
    """A broken upstream stream: the client's stream ends at once with an error event (naming
    ``needle`` when set)."""

    steer: Steer
    needle: str | None = None


@dataclass(frozen=True)
class Rejected:
    """A request field the provider cannot express: 400 naming it before anything is sent."""

    model: str
    fields: Mapping[str, Any]
    param: str
    named_in_message: bool = False


@dataclass(frozen=True)
class Translation:
    """A request whose translation is checked: the fields sent, what the upstream received and
    (when set) the reply text."""

    model: str
    params: Mapping[str, Any]
    sent: Sent
    reply: str | None = None


@dataclass(frozen=True)
class ToolCalls:
    """A streamed answer with tool calls: ``(id or None, name, arguments)`` in order (None: any id,
    all distinct), then finish_reason ``tool_calls``."""

    steer: Steer
    params: Mapping[str, Any]
    calls: Sequence[tuple[str | None, str, Any]]
    sent: Sent
    text: str | None = None
    """The streamed text beside the calls (None: not checked)."""


@dataclass(frozen=True)
class Suite:
    """A provider's table: the entries of each shared case it runs, by id."""

    chat: Mapping[str, Exchange] = field(default_factory=dict)
    stream: Mapping[str, Exchange] = field(default_factory=dict)
    finish_reasons: Mapping[str, Finish] = field(default_factory=dict)
    upstream_errors: Mapping[str, UpstreamError] = field(default_factory=dict)
    broken_streams: Mapping[str, BrokenStream] = field(default_factory=dict)
    rejected: Mapping[str, Rejected] = field(default_factory=dict)
    translations: Mapping[str, Translation] = field(default_factory=dict)
    tool_calls: Mapping[str, ToolCalls] = field(default_factory=dict)

    def tests(self) -> dict[str, Callable[..., None]]:
        """The shared cases whose tables this suite fills in, by name. A provider module adds them to its
        globals (``globals().update(SUITE.tests())``) so that pytest collects them there."""
        return {name: SHARED_CASES[name] for name, table in CASE_TABLES.items() if getattr(self, table)}

    def cases(self, test_name: str) -> Mapping[str, Any]:
        """The entries of one shared case (by its test function's name)."""
        return dict(getattr(self, CASE_TABLES[test_name]))


CASE_TABLES = {
    "test_chat": "chat",
    "test_stream": "stream",
    "test_stream_without_include_usage": "stream",
    "test_finish_reason": "finish_reasons",
    "test_upstream_error": "upstream_errors",
    "test_broken_stream": "broken_streams",
    "test_rejected_field": "rejected",
    "test_request_translation": "translations",
    "test_tool_calls_streamed": "tool_calls",
    "test_responses_api": "stream",
}
"""Which table of the Suite parametrizes each shared case."""

STREAM_MODES = pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])


def _rid_headers(rid: str) -> dict[str, str]:
    return {"x-request-id": rid}


def _check_usage(usage: Any, expected: Tokens) -> None:
    assert usage is not None
    if expected.prompt is not None:
        assert usage.prompt_tokens == expected.prompt
    if expected.completion is not None:
        assert usage.completion_tokens == expected.completion
    if expected.cached is not None:
        assert usage.prompt_tokens_details is not None
        assert usage.prompt_tokens_details.cached_tokens == expected.cached


def _expected_usage(case: Exchange, sent: RecordedRequest) -> Tokens:
    return case.usage if isinstance(case.usage, Tokens) else case.usage(sent)


def _finishes(chunks: list[Any]) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


def _assert_no_secret(target: Target, data: bytes) -> None:
    for secret in target.secrets:
        assert secret.encode() not in data


# -- the shared cases ------------------------------------------------------------------------------


def test_chat(target: Target, case: Exchange) -> None:
    """A whole answer: text, finish_reason, the client's model name, usage, and what was sent."""
    rid = new_request_id()
    with make_client(target.gw) as client:
        resp = client.chat.completions.create(
            model=case.model, messages=case.messages, extra_headers=_rid_headers(rid), **case.params
        )
    assert resp.choices[0].message.content == case.reply
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == case.model
    sent = target.mock.wait_for(rid)
    case.sent.verify(sent)
    _check_usage(resp.usage, _expected_usage(case, sent))
    for secret in target.secrets:
        assert secret not in target.gw.output()


def test_stream(target: Target, case: Exchange) -> None:
    """A stream asking for usage: a role delta first, the text, one finish_reason, every chunk with
    the client's model name, the usage chunk last (no choices), and what was sent."""
    rid = new_request_id()
    with make_client(target.gw) as client:
        stream = client.chat.completions.create(
            model=case.model,
            messages=case.messages,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=_rid_headers(rid),
            **case.params,
        )
        with stream:
            chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == case.reply
    assert chunks[0].choices[0].delta.role == "assistant"
    assert {c.model for c in chunks} == {case.model}
    assert _finishes(chunks) == ["stop"]
    if case.usage_chunk_alone:
        assert chunks[-1].choices == []
        usage = chunks[-1].usage
    else:
        usage = next(c.usage for c in chunks if c.usage)
    sent = target.mock.wait_for(rid)
    case.sent.verify(sent)
    _check_usage(usage, _expected_usage(case, sent))


def test_stream_without_include_usage(target: Target, case: Exchange) -> None:
    """No usage chunk, and no usage on any chunk, unless the client asked for it."""
    with make_client(target.gw) as client:
        stream = client.chat.completions.create(
            model=case.model, messages=case.messages, stream=True, **case.params
        )
        with stream:
            chunks = list(stream)
    assert chunks
    assert all(c.choices for c in chunks)
    leaked = [c.usage for c in chunks if c.usage is not None]
    if leaked and not case.usage_chunk_alone:
        pytest.xfail("the gateway relays the usage Mistral puts on its last chunk even when unasked")
    assert not leaked


@STREAM_MODES
def test_finish_reason(target: Target, case: Finish, stream: bool) -> None:
    rid = new_request_id()
    model = case.steer(target.mock, rid)
    with make_client(target.gw) as client:
        if stream:
            with client.chat.completions.create(
                model=model, messages=USER, stream=True, extra_headers=_rid_headers(rid)
            ) as chunks:
                got = _finishes(list(chunks))
        else:
            resp = client.chat.completions.create(model=model, messages=USER, extra_headers=_rid_headers(rid))
            got = [resp.choices[0].finish_reason]
    assert got == [case.finish]


@STREAM_MODES
def test_upstream_error(target: Target, case: UpstreamError, stream: bool) -> None:
    """The upstream's error reaches the client with its status, as an OpenAI error object (the SDK
    raises the status's error class), with no secret in it."""
    rid = new_request_id()
    model = case.steer(target.mock, rid)
    with make_client(target.gw) as client, pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(
            model=model, messages=USER, stream=stream, extra_headers=_rid_headers(rid)
        )
    assert info.value.status_code == case.status
    rid = new_request_id()
    model = case.steer(target.mock, rid)
    resp = raw_http.post_json(
        target.gw.port,
        CHAT,
        {"model": model, "messages": USER, "stream": stream},
        MASTER_KEY,
        extra_headers={"x-request-id": rid},
    )
    assert resp.status == case.status
    error = resp.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    assert {k: error[k] for k in case.error} == dict(case.error)
    _assert_no_secret(target, resp.body)


def test_broken_stream(target: Target, case: BrokenStream) -> None:
    """A broken upstream stream ends the client's 200 stream at once with an error event, no [DONE]."""
    rid = new_request_id()
    model = case.steer(target.mock, rid)
    started = time.monotonic()
    headers = {
        "Authorization": f"Bearer {MASTER_KEY}",
        "Content-Type": "application/json",
        "x-request-id": rid,
    }
    body = {"model": model, "messages": USER, "stream": True}
    result = raw_http.read_stream(target.gw.port, CHAT, json.dumps(body).encode(), headers, 8)
    error = assert_stream_ended_with_error(result, target.secrets)
    if case.needle is not None:
        assert case.needle in error["message"]
    assert time.monotonic() - started < 5


def test_rejected_field(target: Target, case: Rejected) -> None:
    rid = new_request_id()
    body = {"model": case.model, "messages": USER, **case.fields}
    resp = raw_http.post_json(target.gw.port, CHAT, body, MASTER_KEY, extra_headers={"x-request-id": rid})
    assert resp.status == 400, resp.body[:300]
    error = resp.json()["error"]
    assert error["param"] == case.param
    assert error["type"] == "invalid_request_error"
    if case.named_in_message:
        assert case.param in error["message"]
    assert not target.mock.received(rid)


def test_request_translation(target: Target, case: Translation) -> None:
    rid = new_request_id()
    with make_client(target.gw) as client:
        resp = client.chat.completions.create(
            model=case.model, extra_headers=_rid_headers(rid), **case.params
        )
    case.sent.verify(target.mock.wait_for(rid))
    if case.reply is not None:
        assert resp.choices[0].message.content == case.reply


def test_tool_calls_streamed(target: Target, case: ToolCalls) -> None:
    """Tool calls streamed arrive complete and in order (each call's first delta with id, type and
    name, later ones only arguments), then finish_reason tool_calls."""
    rid = new_request_id()
    model = case.steer(target.mock, rid)
    with make_client(target.gw) as client:
        stream = client.chat.completions.create(
            model=model, stream=True, extra_headers=_rid_headers(rid), **case.params
        )
        with stream:
            chunks = list(stream)
    calls = collect_tool_calls(chunks)
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [(n, a) for _, n, a in case.calls]
    ids = [c["id"] for c in calls]
    assert len(set(ids)) == len(ids)
    assert [i for i, (want, _, _) in zip(ids, case.calls, strict=True) if want is not None] == [
        want for want, _, _ in case.calls if want is not None
    ]
    if case.text is not None:
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == case.text
    assert _finishes(chunks) == ["tool_calls"]
    case.sent.verify(target.mock.wait_for(rid))


def _responses_input(messages: list[Any]) -> list[Any]:
    """Chat messages as Responses input items (text parts → input_text, image parts → input_image)."""
    items = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [
                {"type": "input_text", "text": p["text"]}
                if p.get("type") == "text"
                else {"type": "input_image", "image_url": p["image_url"]["url"]}
                for p in content
            ]
        items.append({"role": message["role"], "content": content})
    return items


@STREAM_MODES
def test_responses_api(target: Target, case: Exchange, stream: bool) -> None:
    """The same exchange through `/v1/responses` (the hub translation; the openai SDK's
    `responses.create` / `responses.stream`): the text, the client's model name, usage, and (streamed)
    what was sent, as for a chat stream."""
    rid = new_request_id()
    kwargs: Any = {
        "model": case.model,
        "input": _responses_input(case.messages),
        "extra_headers": _rid_headers(rid),
    }
    if case.params:
        kwargs["extra_body"] = dict(case.params)
    with make_client(target.gw) as client:
        if stream:
            with client.responses.stream(**kwargs) as events:
                for _ in events:
                    pass
                response = events.get_final_response()
        else:
            response = client.responses.create(**kwargs)
    assert response.output_text == case.reply
    assert response.model == case.model and response.status == "completed"
    sent = target.mock.wait_for(rid)
    assert response.usage is not None and response.usage.output_tokens > 0
    if sent.path.endswith("/responses"):  # a provider speaking Responses: passed through, not translated
        assert sent.body_json["input"] == kwargs["input"]
    elif stream:  # the same upstream request and usage as the chat stream's
        case.sent.verify(sent)
        expected = _expected_usage(case, sent)
        if expected.completion is not None:
            assert response.usage.output_tokens == expected.completion
        if expected.prompt is not None:
            assert response.usage.input_tokens == expected.prompt
    _assert_no_secret(target, response.model_dump_json().encode())


SHARED_CASES: dict[str, Callable[..., None]] = {
    case.__name__: case
    for case in (
        test_chat,
        test_responses_api,
        test_stream,
        test_stream_without_include_usage,
        test_finish_reason,
        test_upstream_error,
        test_broken_stream,
        test_rejected_field,
        test_request_translation,
        test_tool_calls_streamed,
    )
}
