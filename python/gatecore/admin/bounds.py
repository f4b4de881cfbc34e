"""Bounds on admin request bodies: checked where bodies are decoded (`decode_body`, used by the
router) and published in the OpenAPI document (`bound_schemas`), so the two cannot disagree.

Why: values the wire types accept but the store or the encoders cannot hold answered 500 (an rpm of
2^63 overflows SQLite's INTEGER, a 2^64 integer inside metadata is refused by the JSON encoder, a
rotation grace of 1e300 s cannot become a datetime). Each is now a 400 naming the field, before
anything is written.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable
from typing import Any, TypeVar

import msgspec

from gatecore.errors import InvalidRequest, Unprocessable

T = TypeVar("T")

MAX_COUNT = 10**12
"""rpm, tpm, max_parallel: far above any real limit, far below SQLite's and PostgreSQL's 2^63."""
MAX_USD = 1e12
"""budget_usd."""
MAX_DURATION_S = 100 * 366 * 86_400
"""grace_s, expires_in_s (and any other duration in seconds): a century."""
MAX_REF = 200
"""A reference to a team, user or org (an id or a name; names are at most 200 characters)."""
MAX_EMAIL = 320
MAX_ITEMS = 1000
"""models and tags: items in a list."""
MAX_ITEM = 200
"""A model name or a tag."""
MAX_METADATA_DEPTH = 16
MAX_METADATA_BYTES = 64 * 1024
JSON_INT_MIN, JSON_INT_MAX = -(2**63), 2**63 - 1
"""Integers inside metadata: what every JSON encoder and database on the way can hold."""
EARLIEST, LATEST = (
    datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC),
    datetime.datetime(9999, 12, 30, tzinfo=datetime.UTC),
)
"""expires_at: times the API can show back (a time outside cannot be written as RFC 3339)."""

_COUNTS = ("rpm", "tpm", "max_parallel")
# Integer fields a client may write as 5.0 (the counts, and a guardrail definition's window).
_INTEGRAL = (*_COUNTS, "window_chars", "overlap_chars")
_DURATIONS = ("grace_s", "expires_in_s")
_REFS = ("team", "user", "org")
_LISTS = ("models", "tags")


def decode_body(kind: type[T], body: bytes, *, without: Iterable[str] = ()) -> T:
    """`body` decoded as `kind` and checked against the bounds; 400 (`invalid_json`,
    `invalid_body`) or 422 otherwise. Fields named in `without` are refused even when null (a field
    of the shared wire type that this route's resource does not have)."""
    if not body:
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        raw = msgspec.json.decode(body)
    except msgspec.ValidationError as exc:  # a number no JSON value can hold (1e400)
        raise InvalidRequest(f"Invalid request body: {exc}.", code="invalid_body") from None
    except msgspec.DecodeError:
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(raw, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_body")
    for name in without:
        if name in raw:
            raise InvalidRequest(f"Unknown field '{name}' here.", param=name, code="invalid_body")
    for name in _INTEGRAL:
        # JSON has one number type: 5.0 is the integer 5 (as JSON Schema's `integer` says).
        value = raw.get(name)
        if isinstance(value, float) and value.is_integer():
            raw[name] = int(value)
    if "metadata" in raw:
        check_json_value(raw["metadata"], "metadata")
    try:
        decoded = msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"Invalid request body: {exc}.", code="invalid_body") from None
    check_bounds(decoded)
    return decoded


def check_bounds(body: Any) -> None:
    """400 for a field of a decoded admin body outside its bound, 422 for an `expires_at` the API
    could not show back."""
    for name in _COUNTS:
        value = getattr(body, name, None)
        if isinstance(value, int) and value > MAX_COUNT:
            _out_of_range(name, f"at most {MAX_COUNT}")
    usd = getattr(body, "budget_usd", None)
    if isinstance(usd, float) and not (math.isfinite(usd) and usd <= MAX_USD):
        _out_of_range("budget_usd", f"at most {MAX_USD:g}")
    for name in _DURATIONS:
        value = getattr(body, name, None)
        if isinstance(value, float | int) and not (math.isfinite(value) and value <= MAX_DURATION_S):
            _out_of_range(name, f"at most {MAX_DURATION_S} seconds")
    for name in _REFS:
        value = getattr(body, name, None)
        if isinstance(value, str) and len(value) > MAX_REF:
            _out_of_range(name, f"at most {MAX_REF} characters")
    email = getattr(body, "email", None)
    if isinstance(email, str) and len(email) > MAX_EMAIL:
        _out_of_range("email", f"at most {MAX_EMAIL} characters")
    for name in _LISTS:
        items = getattr(body, name, None)
        if isinstance(items, list):
            if len(items) > MAX_ITEMS:
                _out_of_range(name, f"at most {MAX_ITEMS} items")
            if any(len(item) > MAX_ITEM for item in items):
                _out_of_range(name, f"items of at most {MAX_ITEM} characters")
    expires = getattr(body, "expires_at", None)
    if isinstance(expires, datetime.datetime):
        moment = expires if expires.tzinfo is not None else expires.replace(tzinfo=datetime.UTC)
        if not EARLIEST <= moment <= LATEST:
            raise Unprocessable("expires_at must be between 1970-01-01 and 9999-12-30.", param="expires_at")


def check_json_value(value: Any, path: str) -> None:
    """400 for JSON the store cannot keep: nested too deep, integers beyond 64 bits, too large."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_METADATA_DEPTH:
            _out_of_range(path, f"nested at most {MAX_METADATA_DEPTH} deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            # 1e20 is an integer to JSON Schema as much as 100000000000000000000 is.
            integral = isinstance(item, int) or item.is_integer()
            if integral and not JSON_INT_MIN <= item <= JSON_INT_MAX:
                _out_of_range(path, "integers between -2^63 and 2^63-1")
    if len(msgspec.json.encode(value)) > MAX_METADATA_BYTES:
        _out_of_range(path, f"at most {MAX_METADATA_BYTES} bytes of JSON")


def _out_of_range(param: str, bound: str) -> None:
    raise InvalidRequest(f"'{param}' is out of range: {bound}.", param=param, code="invalid_body")


# -- the same bounds in the OpenAPI document -------------------------------------------------------


def json_value_schema() -> dict[str, Any]:
    """Any JSON value whose integers are within 64 bits (the `metadata` values; the depth and size
    bounds are in the description: JSON Schema has no keyword for them)."""
    ref = {"$ref": "#/components/schemas/JsonValue"}
    return {
        "description": f"Any JSON; integers within 64 bits, nested at most {MAX_METADATA_DEPTH} deep, "
        f"at most {MAX_METADATA_BYTES} bytes in all.",
        "anyOf": [
            {"type": "null"},
            {"type": "boolean"},
            {"type": "string"},
            {"type": "integer", "minimum": JSON_INT_MIN, "maximum": JSON_INT_MAX},
            {"type": "number", "not": {"type": "integer"}},
            {"type": "array", "items": ref},
            {"type": "object", "additionalProperties": ref},
        ],
    }


def bound_schemas(components: dict[str, Any]) -> None:
    """Add the bounds `check_bounds` enforces to the generated body schemas, in place."""
    limits: dict[str, dict[str, Any]] = {
        **{name: {"maximum": MAX_COUNT} for name in _COUNTS},
        "budget_usd": {"maximum": MAX_USD},
        **{name: {"maximum": MAX_DURATION_S} for name in _DURATIONS},
        **{name: {"maxLength": MAX_REF} for name in _REFS},
        "email": {"maxLength": MAX_EMAIL},
    }
    components["JsonValue"] = json_value_schema()
    for schema in components.values():
        for name, prop in schema.get("properties", {}).items():
            for branch in prop.get("anyOf", [prop]):
                kind = branch.get("type")
                if name in limits and kind in ("integer", "number", "string"):
                    branch.update(limits[name])
                elif name in _LISTS and kind == "array":
                    branch["maxItems"] = MAX_ITEMS
                    branch["items"] = {**branch.get("items", {}), "maxLength": MAX_ITEM}
                elif name in ("metadata", "options") and kind == "object":  # options: a guardrail plugin's
                    branch["additionalProperties"] = {"$ref": "#/components/schemas/JsonValue"}
