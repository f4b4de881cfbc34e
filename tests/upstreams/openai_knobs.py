"""The OpenAI mock's steering: the ``"mock": {...}`` body field (README.md lists every key) and the
defaults it implies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .mock_server import JsonObject


@dataclass(frozen=True)
class MockOptions:
    """The ``"mock"`` steering object of a request body."""

    status: int | None = None
    error: Any = None
    first_byte_delay_ms: int = 0
    chunks: int | None = None
    gap_ms: int = 0
    tail_gap_ms: int | None = None
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
    headers: tuple[tuple[str, str], ...] = ()

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
        headers = raw.get("headers")
        return cls(
            status=num("status"),
            error=raw.get("error"),
            first_byte_delay_ms=num("first_byte_delay_ms") or 0,
            chunks=num("chunks"),
            gap_ms=num("gap_ms") or 0,
            tail_gap_ms=num("tail_gap_ms"),
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
            headers=tuple((str(k), str(v)) for k, v in headers.items()) if isinstance(headers, dict) else (),
        )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def finish_reason(opts: MockOptions) -> str:
    """The finish reason answered: the steered one, else ``tool_calls`` with tool calls, else ``stop``."""
    if opts.finish_reason is not None:
        return opts.finish_reason
    return "tool_calls" if opts.tool_calls else "stop"


def tool_call_id(i: int, call: JsonObject) -> str:
    given = call.get("id")
    return given if isinstance(given, str) else f"call_mock{i}"


def default_error(status: int) -> JsonObject:
    """The error object answered for a steered ``status`` without an ``error``."""
    kinds = {
        400: ("invalid_request_error", None),
        401: ("invalid_request_error", "invalid_api_key"),
        404: ("invalid_request_error", "model_not_found"),
        429: ("requests", "rate_limit_exceeded"),
    }
    type_, code = kinds.get(status, ("server_error", None))
    return {"message": f"mock upstream error {status}", "type": type_, "param": None, "code": code}
