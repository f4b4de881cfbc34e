"""OpenAI `chat.completion` → a Responses `response` object, and the pieces the stream encoder shares.

- `output`: one `message` item with the answer's text (an `output_text` part, or a `refusal` part),
  then one `function_call` item per tool call, in order. Reasoning text from the upstream is not
  turned into a `reasoning` item: clients would send it back, and chat upstreams do not take it.
- `status`: finish_reason length → `incomplete` (`max_output_tokens`), content_filter → `incomplete`
  (`content_filter`), anything else `completed`.
- usage: `input_tokens` (cached included, as OpenAI counts them), `output_tokens` (reasoning included).
- ids: `resp_` + 24 random hex digits (the stored-responses store keys on it: never derived from
  the client's x-request-id), `msg_` and `fc_` items numbered after it.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

import msgspec
import orjson

from gatecore.api.openai_chat_response import ChatCompletion
from gatecore.errors import UpstreamProtocolError
from gatecore.request import Usage

_completion = msgspec.json.Decoder(ChatCompletion)
# Response ids: 96 random bits from a generator seeded from the OS once per process (a getrandom call
# per response cost more than the rest of the id's making); reseeded in a forked worker, so no two
# workers share a sequence. Reading another team's response needs more than its id (the store checks
# the owner), so the generator need not be cryptographic.
_ids: tuple[int, random.Random] = (0, random.Random())
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


class ResponseShape:
    """What every `response` object of one request carries besides its output: its id, model, time
    and the request's options echoed (as the reference does)."""

    __slots__ = ("_echo", "_make_echo", "created_at", "id", "model", "previous", "request_id")

    def __init__(self, model: str, previous: str | None, make_echo: Callable[[], dict[str, Any]]):
        self.model = model
        self.previous = previous  # the request's previous_response_id
        # The id, time and echoed options are made on first use: a request passed through to an
        # upstream that speaks Responses never needs them (its answer has its own).
        self._make_echo = make_echo
        self._echo: dict[str, Any] | None = None
        self.id = ""
        self.request_id = ""
        self.created_at = 0

    @property
    def echo(self) -> dict[str, Any]:
        if self._echo is None:
            self._echo = self._make_echo()
            self.id = "resp_" + _random_hex()
            self.request_id = self.id[5:]  # the items' ids are numbered after the response's
            self.created_at = int(time.time())
        return self._echo

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: Usage | None = None,
        finish_reason: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The `response` object in a given state."""
        echo = self.echo
        incomplete = _INCOMPLETE.get(finish_reason or "")
        if status == "completed" and incomplete is not None:
            status = "incomplete"
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": error,
            "incomplete_details": {"reason": incomplete} if status == "incomplete" else None,
            "model": self.model,
            "output": output,
            **echo,
            "usage": usage_object(usage) if usage is not None else None,
        }


def _random_hex() -> str:
    global _ids
    pid, ids = _ids
    if pid != os.getpid():
        _ids = (os.getpid(), ids := random.Random(os.urandom(32)))
    return f"{ids.getrandbits(96):024x}"


def usage_object(usage: Usage) -> dict[str, Any]:
    """Responses' `usage` for tokens counted the OpenAI way."""
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def message_item(item_id: str, text: str, refusal: bool, status: str = "completed") -> dict[str, Any]:
    part = _refusal_part(text) if refusal else text_part(text)
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": [part]}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _refusal_part(text: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": text}


def call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call_id, "name": name,
            "arguments": arguments}  # fmt: skip


def response_from_completion(body: bytes, shape: ResponseShape) -> tuple[dict[str, Any], str | None]:
    """The `response` object for a whole `chat.completion` body, and its finish reason."""
    try:
        completion = _completion.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise UpstreamProtocolError("The upstream answer is not a chat completion.") from None
    if not completion.choices or completion.choices[0].message is None:
        raise UpstreamProtocolError("The upstream answer has no message.")
    choice = completion.choices[0]
    message = choice.message
    assert message is not None
    output: list[dict[str, Any]] = []
    shape.echo  # noqa: B018 (made on first use, with the ids)
    rid = shape.request_id
    if message.content:
        output.append(message_item(f"msg_{rid}", message.content, False))
    elif message.refusal:
        output.append(message_item(f"msg_{rid}", message.refusal, True))
    for i, call in enumerate(message.tool_calls or ()):
        function = call.function
        name = (function.name if function is not None else None) or ""
        arguments = (function.arguments if function is not None else None) or ""
        output.append(call_item(f"fc_{rid}_{i}", call.id or f"call_{rid}_{i}", name, arguments))
    usage = None
    if completion.usage is not None:
        u = completion.usage
        details, out_details = u.prompt_tokens_details, u.completion_tokens_details
        usage = Usage(
            u.prompt_tokens,
            u.completion_tokens,
            details.cached_tokens if details is not None else 0,
            out_details.reasoning_tokens if out_details is not None else 0,
        )
    return shape.response("completed", output, usage, choice.finish_reason), choice.finish_reason


def event(kind: str, seq: int, fields: dict[str, Any]) -> bytes:
    """One Responses stream event: `event: <type>` and its JSON data with its sequence number."""
    data = orjson.dumps({"type": kind, "sequence_number": seq, **fields})
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"
