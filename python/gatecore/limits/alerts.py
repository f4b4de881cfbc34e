"""The soft-budget alert: one small JSON POST to the configured webhook, on the worker's loop.

A plain HTTP/1.1 exchange over asyncio streams (TLS for https), bounded in time; a failure is logged
and dropped: an alert never holds up or fails a request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import urlsplit

import orjson

from gatecore.limits.budgets import MICROS
from gatecore.limits.rules import Rule

log = logging.getLogger("gatecore.limits")
TIMEOUT_S = 5.0


def alert_body(rule: Rule, spent_micros: int) -> bytes:
    # The cell is `usd:<scope kind>:<scope id>:<period id>`; a model name may hold colons.
    kind, rest = rule.cell.split(":", 2)[1:]
    scope_id, period_id = rest.rsplit(":", 1)
    return orjson.dumps(
        {
            "event": "budget_crossed",
            "scope": rule.label,
            "scope_kind": kind,
            "scope_id": scope_id,
            "period": rule.period,
            "period_id": period_id,
            "budget_usd": rule.limit / MICROS,
            "spent_usd": spent_micros / MICROS,
            "ts": round(time.time(), 3),
        }
    )


async def post_alert(url: str, rule: Rule, spent_micros: int) -> None:
    """POST the alert for `rule` to `url`; logs instead of raising."""
    try:
        status = await asyncio.wait_for(_post(url, alert_body(rule, spent_micros)), TIMEOUT_S)
        if not 200 <= status < 300:
            log.warning("budget alert webhook answered %d", status)
    except (TimeoutError, OSError, ValueError) as exc:
        log.warning("budget alert webhook failed: %s", type(exc).__name__)


async def _post(url: str, body: bytes) -> int:
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    host = parts.hostname or "localhost"
    reader, writer = await asyncio.open_connection(host, parts.port or (443 if tls else 80), ssl=tls or None)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # Host is host[:port] only: the URL's user:password must never go on the wire in clear.
        host_header = host if ":" not in host else f"[{host}]"
        if parts.port is not None:
            host_header += f":{parts.port}"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\nuser-agent: gatecore\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
        status_line = await reader.readline()
        return int(status_line.split()[1])
    finally:
        writer.close()
