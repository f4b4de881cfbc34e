"""What body logging writes for one body: the caller's key scrubbed first (even across the cut), then
the configured redactor, then the cut at the cap, never inside a character."""

from __future__ import annotations

import re

from gatecore.telemetry.body_log import KEY_MARK, logged_body

KEY = "gk-AbCdEf0123456789secretsecretsecret"


class EmailRedactor:
    """A stand-in for the guardrails' PII matcher: e-mail addresses become `[email]`."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def redact(self, text: str) -> str:
        self.seen.append(text)
        return re.sub(r"[\w.]+@[\w.]+", "[email]", text)


def test_the_key_is_scrubbed_before_the_redactor_sees_the_text_and_before_the_cut() -> None:
    body = ("x" * 90 + KEY + " mail me at ann@example.com").encode()
    redactor = EmailRedactor()
    text, cut = logged_body(body, 100, KEY, redactor)
    assert KEY not in redactor.seen[0] and KEY_MARK in redactor.seen[0]  # scrubbed first
    assert text == "x" * 90 + KEY_MARK + " mail"[: 100 - 90 - len(KEY_MARK)] and cut
    whole, cut = logged_body(body, 1000, KEY, redactor)
    assert whole == "x" * 90 + KEY_MARK + " mail me at [email]" and not cut


def test_no_redactor_no_key_and_multibyte_cuts() -> None:
    assert logged_body(b'{"a": 1}', 100, None, None) == ('{"a": 1}', False)
    text, cut = logged_body("é".encode() * 10, 5, None, None)  # 2 bytes each: 2 whole ones fit
    assert text == "éé" and cut
    text, cut = logged_body(b"\xff\xfeok", 100, None, None)  # not UTF-8: replaced, never raised
    assert text.endswith("ok") and not cut
    # The redactor may lengthen the text past the cap: it is cut and said to be.
    text, cut = logged_body(b"x@y.z " * 3, 15, None, EmailRedactor())
    assert text == "[email] [email]" and cut
