"""The answer side's stream window (guardrails/answer.py) on event sequences the mock upstreams do
not produce: n > 1 choices interleaved (each choice's text held and checked on its own), an entity
split across many tiny events, and order kept around non-content events."""

from __future__ import annotations

import json
import random
import string

import orjson

from gatecore.config.guardrails import GuardrailConfig
from gatecore.guardrails.answer import AnswerCheck
from gatecore.guardrails.pii import PiiGuard
from gatecore.guardrails.tally import Tally

GUARD = PiiGuard(
    GuardrailConfig(
        name="pii", kind="pii", entities={"credit_card": "redact"}, window_chars=8, overlap_chars=32
    )
)


def event(index: int, content: str) -> bytes:
    doc = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": index, "delta": {"content": content}, "finish_reason": None}]}  # fmt: skip
    return b"data: " + orjson.dumps(doc) + b"\n\n"


def texts(out: bytes) -> dict[int, str]:
    found: dict[int, str] = {}
    for block in out.split(b"\n\n"):
        if block.startswith(b"data: {"):
            choice = json.loads(block[6:])["choices"][0]
            found[choice["index"]] = found.get(choice["index"], "") + (choice["delta"].get("content") or "")
    return found


def test_interleaved_choices_are_held_apart() -> None:
    check = AnswerCheck((GUARD,), None, Tally())
    zero = "card 4111 1111 1111 1111 for zero, then plenty of other words to push the window along"
    one = "and 5500 0000 0000 0004 for one, also followed by enough words to be released in time"
    out = b""
    for a, b in zip(zero.split(" "), one.split(" "), strict=False):
        out += check.events(event(0, a + " ") + event(1, b + " "))
    out += check.end()
    got = texts(out)
    assert got[0].startswith("card [CREDIT_CARD] for zero") and "4111" not in got[0]
    assert got[1].startswith("and [CREDIT_CARD] for one") and "5500" not in got[1]
    assert check.counts == {("pii", "credit_card", "redact"): 2}


def test_character_by_character_and_order_around_other_events() -> None:
    check = AnswerCheck((GUARD,), None, Tally())
    out = check.events(b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n')
    for ch in "pay 4111111111111111 now":
        out += check.events(event(0, ch))
    out += check.events(
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    )
    blocks = [b for b in out.split(b"\n\n") if b]
    assert b'"role"' in blocks[0] and blocks[-1] == b"data: [DONE]" and b"finish_reason" in blocks[-2]
    assert texts(out)[0] == "pay [CREDIT_CARD] now"


def test_an_endless_token_does_not_grow_the_held_text() -> None:
    secrets = PiiGuard(GuardrailConfig(name="pii", kind="pii", entities={"secret": "redact"}))
    check = AnswerCheck((secrets,), None, Tally())
    rng = random.Random(1)
    alphabet = string.ascii_letters + string.digits
    pieces = ["".join(rng.choice(alphabet) for _ in range(1024)) for _ in range(100)]  # one endless token
    out = b""
    for piece in pieces:
        out += check.events(event(0, piece))
        assert sum(len(t.text) for t in check.held.values()) <= 64 * 1024 + len(piece)
    out += check.end()
    released = texts(out)[0]
    assert released.count("[SECRET]") >= 2 and not any(p[100:200] in released for p in pieces)


def delta_event(delta: dict[str, object], finish: str | None = None) -> bytes:
    doc = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return b"data: " + orjson.dumps(doc) + b"\n\n"


def test_a_whole_tool_call_in_one_delta_goes_out_as_header_then_checked_arguments() -> None:
    # Some translations (Gemini's) send a call's id, name and whole arguments in one delta.
    check = AnswerCheck((GUARD,), None, Tally())
    card = "4111 1111 1111 1111"
    call = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "pay", "arguments": json.dumps({"card": card})}}  # fmt: skip
    out = check.events(delta_event({"content": "paying "}) + delta_event({"tool_calls": [call]}))
    out += check.events(delta_event({}, "tool_calls") + b"data: [DONE]\n\n") + check.end()
    deltas = [
        json.loads(b[6:])["choices"][0]["delta"] for b in out.split(b"\n\n") if b.startswith(b"data: {")
    ]
    # In order: the content, the call's header (no arguments), its arguments checked, the finish.
    assert deltas[0] == {"content": "paying "}
    assert deltas[1] == {"tool_calls": [{**call, "function": {"name": "pay", "arguments": ""}}]}
    assert deltas[2] == {"tool_calls": [{"index": 0, "function": {"arguments": '{"card": "[CREDIT_CARD]"}'}}]}
    assert deltas[3] == {} and out.endswith(b"data: [DONE]\n\n") and card.encode() not in out


def test_reasoning_then_content_keeps_the_order() -> None:
    check = AnswerCheck((GUARD,), None, Tally())
    out = b"".join(
        check.events(delta_event({"reasoning_content": piece})) for piece in ("think ", "4111 1111 ")
    )
    out += check.events(
        delta_event({"reasoning_content": "1111 1111 done"}) + delta_event({"content": "answer"})
    )
    out += check.end()
    deltas = [
        json.loads(b[6:])["choices"][0]["delta"] for b in out.split(b"\n\n") if b.startswith(b"data: {")
    ]
    reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
    assert reasoning == "think [CREDIT_CARD] done" and deltas[-1] == {"content": "answer"}
