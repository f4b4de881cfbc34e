"""The prompt-injection guard: a scored heuristic detector over what users and tools put in a request.

Signals, each with a weight; the score is 1 - Π(1 - weight) over the signals found, so one strong
signal can pass a threshold alone and weak ones add up: instruction overrides ("ignore all previous
instructions"), role-play jailbreaks ("DAN", "developer mode", "no restrictions"), system-prompt
extraction ("repeat the text above", "show your system prompt"), and smuggling (zero-width
characters, Latin words mixed with Cyrillic or Greek look-alikes, base64 or hex blobs). Smuggled text
is decoded (zero-width characters removed, look-alikes mapped to Latin, blobs decoded) and scanned
again, and what it hid counts more. System and assistant messages are the operator's and the model's:
only user and tool texts (and completions' prompts) are scored. Each text is scored on its first
`MAX_TEXT_CHARS` characters (every pattern is bounded: no backtracking blow-up).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from gatecore._core import PiiScanner

MAX_TEXT_CHARS = 64 * 1024
MAX_TEXTS = 256

# Each signal: its name, a pattern in the `regex` crate's syntax (run in Rust: linear time, one
# RegexSet pass for all of them) and its weight.
SIGNALS: tuple[tuple[str, str, float], ...] = (
    (
        "instruction_override",
        "(?-u:\\b)(?:ignore|disregard|forget|skip|override|bypass)\\s+(?:(?:all|any|the|of|everything)\\s+){0,3}(?:previous|prior|above|earlier|preceding|your|system|those|these|original)\\s+(?:\\w+\\s+){0,2}?(?:instructions?|prompts?|rules|directions|guidelines|constraints|programming)(?-u:\\b)",
        0.85,
    ),
    (
        "new_instructions",
        "(?-u:\\b)(?:new|updated|real) (?:system )?instructions?\\s*:|(?-u:\\b)from now on,? you (?:are|will|must)(?-u:\\b)",
        0.5,
    ),
    (
        "jailbreak",
        "(?-u:\\b)(?:(?-i:DAN)|do anything now|developer mode|jailbr(?:oken|eak)|god mode|(?:un(?:filtered|censored|restricted|aligned)) (?:ai|assistant|model|mode|version)|without (?:any )?(?:restrictions|filters|limitations|censorship)|no (?:ethical|moral|content) (?:guidelines|restrictions|limits|filters)|you are no longer (?:an? )?(?:ai|assistant|language model|bound|restricted))(?-u:\\b)",
        0.8,
    ),
    (
        "roleplay",
        "(?-u:\\b)(?:pretend|act as if|imagine|roleplay|role-play)(?-u:\\b)[^.\\n]{0,60}(?-u:\\b)(?:you (?:are|were|have)|to be)(?-u:\\b)",
        0.35,
    ),
    (
        "prompt_extraction",
        "(?-u:\\b)(?:reveal|show|print|repeat|output|display|tell me|give me|what (?:is|are|were)|leak|dump)(?-u:\\b)[^.\\n]{0,30}?(?-u:\\b)(?:your (?:system |initial |hidden |original |secret |full )?(?:prompt|instructions|rules)|(?:the|initial|hidden|original|secret) (?:system prompt|system message|hidden instructions|initial instructions))(?-u:\\b)|(?-u:\\b)repeat (?:the|all|everything)[^.\\n]{0,20}(?-u:\\b)(?:above|before)(?-u:\\b)",
        0.8,
    ),
    (
        "encoded_instructions",
        "(?-u:\\b)(?:decode|base64|hex|rot13)(?-u:\\b)[^.\\n]{0,40}(?-u:\\b)(?:follow|execute|obey|run|do what)(?-u:\\b)",
        0.5,
    ),
)
_PHRASES = PiiScanner([], [(name, "(?i)" + pattern) for name, pattern, _ in SIGNALS])
_WEIGHTS = {name: weight for name, _, weight in SIGNALS}
# Hex before base64: a run of hex digits is both, and a tie goes to the type listed first. Open-ended
# repetitions on purpose: a bounded one ({24,4096}) compiles to thousands of NFA states, which made
# a long run of letters take seconds; a blob is cut to MAX_BLOB_CHARS before it is decoded instead.
_BLOB_PATTERNS = (
    ("hex", r"(?-u:\b)(?:[0-9a-fA-F]{2}){16,}(?-u:\b)"),
    ("base64", r"[A-Za-z0-9+/]{24,}={0,2}"),
)
_BLOBS = PiiScanner([], list(_BLOB_PATTERNS))
# Phrases and blobs in one scanner: one RegexSet pass over a clean text (the common case) instead
# of two. It keeps one of two overlapping matches, so a text where it finds anything is scanned
# again by the two scanners apart (exactly what they find alone); nothing found by it means neither
# finds anything (each pattern is matched on its own).
_ANY = PiiScanner(
    [], [(name, "(?i)" + pattern) for name, pattern, _ in SIGNALS] + [(k, p) for k, p in _BLOB_PATTERNS]
)
MAX_BLOB_CHARS = 8192
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u180e]")
# Cyrillic and Greek letters that look like Latin ones.
_CONFUSABLES = str.maketrans(
    "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u0501\u051b\u051d\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421"
    "\u0422\u0425\u0406\u0408\u0405\u03b1\u03bf\u03f2\u03bd\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7",
    "aeopcyxijsdqwABEKMHOPCTXIJSaocvABEZHIKMNOPTYX",
)
_MIXED_WORD = re.compile(r"\b(?=\w*[A-Za-z])(?=\w*[\u0370-\u03ff\u0400-\u04ff])\w{2,40}\b")


def score(text: str) -> tuple[float, list[str]]:
    """The injection score of `text` (0..1) and the signals found."""
    text = text[:MAX_TEXT_CHARS]
    found: list[tuple[str, float]] = []
    hit = bool(_ANY.scan(text))  # False: no phrase and no blob in the text as it reads
    if hit:
        _scan(text, found)
    if not text.isascii():  # zero-width characters and look-alikes are never ASCII
        hidden = text
        if _ZERO_WIDTH.search(text):
            found.append(("zero_width", 0.5 if len(_ZERO_WIDTH.findall(text)) >= 3 else 0.2))
            hidden = _ZERO_WIDTH.sub("", text)
        if _MIXED_WORD.search(hidden):
            found.append(("homoglyph", 0.5))
            hidden = hidden.translate(_CONFUSABLES)
        if hidden != text:
            _scan(hidden, found, smuggled=True)
    for decoded in _decoded_blobs(text) if hit else ():
        _scan(decoded, found, smuggled=True)
    remaining = 1.0
    for _, weight in found:
        remaining *= 1.0 - weight
    return 1.0 - remaining, sorted({name for name, _ in found})


def _scan(text: str, found: list[tuple[str, float]], smuggled: bool = False) -> None:
    kinds = _PHRASES.kinds
    for name in {kinds[kind] for kind, _, _ in _PHRASES.scan(text)}:
        weight = _WEIGHTS[name]
        # What was hidden from a plain reading was hidden on purpose: it counts more.
        found.append((f"smuggled_{name}", min(0.95, weight + 0.3)) if smuggled else (name, weight))


def _decoded_blobs(text: str) -> list[str]:
    """Printable texts that base64 or hex blobs of `text` decode to (at most 8)."""
    out: list[str] = []
    kinds = _BLOBS.kinds
    for kind, start, end in _BLOBS.scan(text)[:32]:
        blob = text[start : min(end, start + MAX_BLOB_CHARS)]
        decoded = (_hex if kinds[kind] == "hex" else _b64)(blob)
        if decoded is not None:
            out.append(decoded)
            if len(out) >= 8:
                break
    return out


def _b64(blob: str) -> str | None:
    try:
        raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return _printable(raw)


def _hex(blob: str) -> str | None:
    try:
        return _printable(bytes.fromhex(blob))
    except ValueError:
        return None


def _printable(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    letters = sum(c.isalpha() or c.isspace() for c in text)
    return text if text and letters >= 0.8 * len(text) else None


def scored_texts(doc: dict[str, Any]) -> list[str]:
    """The texts of a hub request that users and tools wrote (not system or assistant messages)."""
    texts: list[str] = []
    messages = doc.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if not isinstance(message, dict) or message.get("role") in ("system", "developer", "assistant"):
                continue
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts.extend(
                    p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
                )
    for field in ("prompt", "input"):
        value = doc.get(field)
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list):
            texts.extend(v for v in value if isinstance(v, str))
    return texts[-MAX_TEXTS:]
