"""`multipart/form-data` bodies (OpenAI's audio transcription upload), read only as far as gatecore
must: the boundary of the content type, and one small text field (`model`) to route by and rewrite.

Bounded: the content type at most 1024 characters and a boundary of 1-70 characters (RFC 2046); a
field's headers at most 8 KiB; the value read at most 256 bytes. The file parts are never decoded or
copied apart from the one rewrite of a renamed model.
"""

from __future__ import annotations

import re

from gatecore.errors import InvalidRequest

MAX_CONTENT_TYPE = 1024
MAX_FIELD_HEADERS = 8192
MAX_VALUE = 256
_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))', re.IGNORECASE)
_NAME = re.compile(rb'name="([^"]{1,100})"', re.IGNORECASE)


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a `multipart/form-data` content type; 400 otherwise."""
    if (
        not content_type
        or len(content_type) > MAX_CONTENT_TYPE
        or not content_type.isascii()
        or not content_type.isprintable()
        or not content_type.lower().startswith("multipart/form-data")
    ):
        raise InvalidRequest(
            "This endpoint takes a multipart/form-data body (with a boundary).", code="invalid_content_type"
        )
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise InvalidRequest("The multipart content type has no valid boundary.", code="invalid_content_type")
    return (match.group(1) or match.group(2)).encode("latin-1")


def field_span(body: bytes, boundary: bytes, name: str) -> tuple[int, int] | None:
    """Where the value of the text field `name` lies in `body` (start, end), or None if absent."""
    delimiter = b"--" + boundary
    wanted = name.encode()
    position = body.find(delimiter)
    while position >= 0:
        start = position + len(delimiter)
        if body[start : start + 2] == b"--":
            return None  # the closing delimiter
        head_end = body.find(b"\r\n\r\n", start, start + MAX_FIELD_HEADERS)
        if head_end < 0:
            raise InvalidRequest("A multipart part has no end of its headers.", code="invalid_body")
        match = _NAME.search(body, start, head_end)
        value_start = head_end + 4
        following = body.find(b"\r\n" + delimiter, value_start)
        if following < 0:
            raise InvalidRequest("The multipart body has no closing boundary.", code="invalid_body")
        if match is not None and match.group(1) == wanted:
            return value_start, following
        position = following + 2
    return None


def text_field(body: bytes, boundary: bytes, name: str) -> str | None:
    """The value of the text field `name` (at most 256 bytes of UTF-8), or None if absent."""
    span = field_span(body, boundary, name)
    if span is None:
        return None
    start, end = span
    if end - start > MAX_VALUE:
        raise InvalidRequest(f"The form field '{name}' is longer than {MAX_VALUE} bytes.", param=name)
    try:
        return body[start:end].decode()
    except UnicodeDecodeError:
        raise InvalidRequest(f"The form field '{name}' is not UTF-8 text.", param=name) from None


def with_field(body: bytes, boundary: bytes, name: str, value: str) -> bytes:
    """`body` with the value of the text field `name` replaced (it must be present)."""
    span = field_span(body, boundary, name)
    assert span is not None
    return body[: span[0]] + value.encode() + body[span[1] :]
