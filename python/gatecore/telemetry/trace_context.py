"""W3C Trace Context (https://www.w3.org/TR/trace-context/): a client's `traceparent` and
`tracestate` read, ours written, and the sampling decision.

Both readers are plain string checks on header values of bounded size (granian caps a header), with
no regular expression: whatever a client sends costs at most a scan of it. An invalid `traceparent`
is ignored (the request starts a new trace); an invalid `tracestate` is dropped whole, as the
specification asks, while the `traceparent` it came with still counts.
"""

from __future__ import annotations

# The header lines that hand a span's context on: `traceparent`, and `tracestate` when there is one.
from gatecore._core import traceparent_line as traceparent_line

_HEX = frozenset("0123456789abcdef")
# tracestate keys: lower-case letters, digits and `_-*/`, with `@` between a tenant and a system.
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-*/@")
MAX_STATE_MEMBERS = 32
MAX_STATE_LENGTH = 512  # what W3C asks a vendor to propagate at least; longer states are dropped
SAMPLED = 0x01
# W3C Trace Context level 2: the trace id's right 7 bytes are random (gatecore's always are).
RANDOM = 0x02
LOW_64 = (1 << 64) - 1


def _is_hex(text: str) -> bool:
    return _HEX.issuperset(text)


def parse_traceparent(value: str) -> tuple[int, int, int] | None:
    """(trace id, parent span id, trace flags) of a `traceparent` value; None when it is not valid.

    Version 00 is exactly `00-<32 hex>-<16 hex>-<2 hex>`; a later version may add fields after a
    `-`, which are ignored; version ff and all-zero ids are invalid. Lower-case hex only.
    """
    value = value.strip(" \t")
    if len(value) < 55 or value[2] != "-" or value[35] != "-" or value[52] != "-":
        return None
    version = value[:2]
    if version == "ff" or not _is_hex(version):
        return None
    if len(value) > 55 and (version == "00" or value[55] != "-"):
        return None
    trace_hex, span_hex, flags_hex = value[3:35], value[36:52], value[53:55]
    if not (_is_hex(trace_hex) and _is_hex(span_hex) and _is_hex(flags_hex)):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, int(flags_hex, 16)


def parse_tracestate(value: str | None) -> str:
    """A `tracestate` value as it is to be propagated (members trimmed, empty ones left out), or ""
    when it is absent or invalid: a bad key or value, a key twice, more than 32 members, or longer
    than 512 characters."""
    if not value or len(value) > MAX_STATE_LENGTH:
        return ""
    members: list[str] = []
    keys: set[str] = set()
    for raw in value.split(","):
        member = raw.strip(" \t")
        if not member:
            continue
        key, sep, val = member.partition("=")
        if not sep or not _valid_key(key) or not _valid_value(val) or key in keys:
            return ""
        keys.add(key)
        members.append(member)
    if len(members) > MAX_STATE_MEMBERS:
        return ""
    return ",".join(members)


def _valid_key(key: str) -> bool:
    if not key or len(key) > 256 or not _KEY_CHARS.issuperset(key) or key.count("@") > 1:
        return False
    tenant, _, system = key.rpartition("@")
    if "@" in key:  # multi-tenant: tenant@system, tenant up to 241 chars, system up to 14
        return bool(tenant) and bool(system) and len(tenant) <= 241 and len(system) <= 14
    return key[0].isdigit() or key[0].islower()


def _valid_value(value: str) -> bool:
    # 1-256 printable ASCII characters but `,` and `=`, not ending in a space.
    return (
        0 < len(value) <= 256 and value[-1] != " " and all(" " <= c <= "~" and c not in ",=" for c in value)
    )


def ratio_bound(ratio: float) -> int:
    """The bound below which a trace id's low 64 bits are sampled at `ratio` (OpenTelemetry's
    TraceIdRatioBased: the same ids are sampled by every service using it)."""
    return round(ratio * (LOW_64 + 1))
