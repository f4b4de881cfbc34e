"""OTLP/HTTP trace export from the worker's event loop: the batch span processor and the exporter.

Ended spans wait encoded in the worker's `OtlpSpans` queue (bounded by `max_queue_size`: past it new
spans are dropped, counted, and reported in one warning a minute). This task posts them as
`ExportTraceServiceRequest`s (`Content-Type: application/x-protobuf`, gzip when configured) to the
collector: a batch as soon as `batch_size` wait, everything every `schedule_delay_s`, one export at a
time, through a keep-alive connection pool of its own (the gateway's HTTP/1.1 client; TLS verified
against the system's CAs or the configured CA file).

Per the OTLP specification, 429, 502, 503 and 504 and failed connections are retried with
exponential backoff (or the collector's `Retry-After`), within `timeout_s` per batch; any other
answer drops the batch with a warning naming the status. Warnings never show the export headers
(a collector's API key) or the URL's credentials.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import logging
import os
import random
import ssl
import time
from urllib.parse import unquote, urlsplit

from gatecore import __version__
from gatecore._core import OtlpSpans
from gatecore.config.telemetry import TracingConfig
from gatecore.errors import GatewayError
from gatecore.upstream.deadlines import DeadlineSweeper
from gatecore.upstream.exchange import StandaloneExchange
from gatecore.upstream.pool import ConnectionPool, Origin
from gatecore.upstream.retry_after import retry_after_seconds
from gatecore.upstream.timeouts import Timeouts

DEFAULT_ENDPOINT = "http://127.0.0.1:4318/v1/traces"
RETRYABLE = frozenset({429, 502, 503, 504})
MAX_ANSWER_BYTES = 64 * 1024
FIRST_BACKOFF_S = 0.5
WARN_EVERY_S = 60.0
log = logging.getLogger("gatecore.telemetry")


def exporter_endpoint(configured: str | None) -> str:
    """The traces URL: the config's, else the OTLP environment variables', else the local collector."""
    if configured:
        return configured
    traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if traces:
        return traces
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return f"{base.rstrip('/')}/v1/traces" if base else DEFAULT_ENDPOINT


def _otlp_variable(name: str) -> str | None:
    """OTEL_EXPORTER_OTLP_TRACES_<name>, else OTEL_EXPORTER_OTLP_<name> (the traces signal's own
    setting wins over the one for every signal, as the OTLP exporter specification says)."""
    return os.environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or os.environ.get(f"OTEL_EXPORTER_OTLP_{name}")


def parse_key_values(text: str | None) -> dict[str, str]:
    """`key=value,key=value` with percent-encoded values, as OTEL_EXPORTER_OTLP_HEADERS and
    OTEL_RESOURCE_ATTRIBUTES carry them; malformed members are skipped."""
    pairs: dict[str, str] = {}
    for member in (text or "").split(","):
        key, sep, value = member.partition("=")
        key = key.strip()
        if sep and key:
            pairs[key] = unquote(value.strip())
    return pairs


def export_headers(configured: dict[str, str]) -> dict[str, str]:
    """The export request's extra headers: the OTLP environment's, then the config's over them."""
    headers = {k.lower(): v for k, v in parse_key_values(_otlp_variable("HEADERS")).items()}
    headers.update((k.lower(), v) for k, v in configured.items())
    return headers


def export_compression(configured: str | None) -> str:
    """ "gzip" or "none": the config's, else the OTLP environment's, else none."""
    if configured is not None:
        return configured
    env = _otlp_variable("COMPRESSION") or ""
    return "gzip" if env.strip().lower() == "gzip" else "none"


def export_ssl_context(configured: str | None) -> ssl.SSLContext | None:
    """How an https collector is verified: against the CA file of the config, else of the OTLP
    environment, else (None) the system's CAs. An unreadable file from the environment is logged and
    the system's CAs are used (the config's was checked when it was loaded)."""
    cafile = configured or _otlp_variable("CERTIFICATE")
    if not cafile:
        return None
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        log.error("trace export: cannot read the CA file %s (%s); using the system's CAs", cafile, exc)
        return None


def shown_url(url: str) -> str:
    """`url` without the credentials it may carry (userinfo, query), for logs."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2], query="").geturl()


class OtlpExporter:
    """Posts the queued spans to the collector; `notify` after adding spans, `aclose` flushes."""

    __slots__ = (
        "_closing",
        "_head",
        "_last_dropped",
        "_task",
        "_wake",
        "_warn_at",
        "batch_size",
        "delay_s",
        "gzip",
        "pool",
        "spans",
        "timeout_s",
        "url",
    )

    def __init__(self, config: TracingConfig, spans: OtlpSpans, sweeper: DeadlineSweeper):
        self.spans = spans
        self.url = exporter_endpoint(config.endpoint)
        parts = urlsplit(self.url)
        origin = Origin(self.url)  # scheme, host and port: a URL's credentials are not part of it
        ssl_context = export_ssl_context(config.certificate) if origin.tls else None
        self.pool = ConnectionPool(origin, sweeper, max_idle=2, ssl_context=ssl_context)
        self.batch_size = config.batch_size
        self.delay_s = config.schedule_delay_s
        self.timeout_s = config.timeout_s
        self.gzip = export_compression(config.compression) == "gzip"
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        lines = [
            f"POST {path} HTTP/1.1",
            f"host: {origin.host_header}",
            "content-type: application/x-protobuf",
            f"user-agent: gatecore/{__version__}",
        ]
        if self.gzip:
            lines.append("content-encoding: gzip")
        headers = export_headers(config.headers)
        if parts.username is not None and "authorization" not in headers:
            # A URL's credentials go as HTTP Basic auth, as the OpenTelemetry SDK's exporter sent them.
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            headers["authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        self._head = ("\r\n".join(lines) + "\r\ncontent-length: ").encode("latin-1")
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._last_dropped = 0
        self._warn_at = 0.0

    def start(self) -> None:
        """Start exporting (on the worker's loop, once it runs)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def notify(self, waiting: int) -> None:
        """Called with the spans now waiting: a full batch is exported at once."""
        if waiting >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    async def flush(self) -> None:
        """Export every waiting span now (benches, tests)."""
        while await self._export_batch():
            pass

    async def aclose(self) -> None:
        """Export what waits (within `timeout_s`), then stop."""
        self._closing = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                async with asyncio.timeout(self.timeout_s):
                    await asyncio.shield(task)
            except TimeoutError:
                task.cancel()
                log.warning("trace export did not finish at shutdown: %d spans dropped", len(self.spans))
        else:
            await self.flush()
        self.pool.close()

    async def _run(self) -> None:
        while not self._closing:
            try:
                async with asyncio.timeout(self.delay_s):
                    await self._wake.wait()
                full_only = True  # woken by a full batch: the rest waits for its delay
            except TimeoutError:
                full_only = False
            self._wake.clear()
            try:
                while (len(self.spans) >= self.batch_size or not full_only) and await self._export_batch():
                    pass
            except Exception:  # a bug here must not end exporting for the worker's life
                log.exception("trace export failed")
            self._report_drops()
        await self.flush()
        self._report_drops()

    async def _export_batch(self) -> bool:
        """Post the oldest batch; False when none was waiting."""
        before = len(self.spans)
        body = self.spans.take()
        if body is None:
            return False
        count = before - len(self.spans)
        if self.gzip:
            body = await asyncio.to_thread(gzip.compress, body, 6)
        await self._post(body, count)
        return True

    async def _post(self, body: bytes, count: int) -> None:
        head = self._head + b"%d\r\n\r\n" % len(body)
        deadline = time.monotonic() + self.timeout_s
        backoff = FIRST_BACKOFF_S
        while True:
            left = deadline - time.monotonic()
            timeouts = Timeouts(left, left, left, left)
            # The pool wants a request context (for a client disconnect to abort through); an export has none.
            exchange = StandaloneExchange()
            wait: float | None = None
            try:
                answer = await self.pool.exchange(exchange, head, body, timeouts)
                await answer.read_all(MAX_ANSWER_BYTES)
            except GatewayError as exc:
                reason = exc.message
            except BaseException:
                # Cancelled at shutdown mid-exchange: the connection is neither idle nor closed.
                if exchange.upstream is not None:
                    exchange.upstream.abort()
                raise
            else:
                if 200 <= answer.status < 300:
                    return
                reason = f"HTTP {answer.status}"
                if answer.status not in RETRYABLE:
                    break
                wait = retry_after_seconds(answer)
            wait = backoff * random.uniform(0.8, 1.2) if wait is None else wait
            if time.monotonic() + wait >= deadline or self._closing:
                break
            await asyncio.sleep(wait)
            backoff *= 2
        log.warning("trace export to %s failed (%s): %d spans dropped", shown_url(self.url), reason, count)

    def _report_drops(self) -> None:
        dropped = self.spans.dropped
        now = time.monotonic()
        if dropped > self._last_dropped and now >= self._warn_at:
            log.warning(
                "span queue full (telemetry.tracing.max_queue_size): %d spans dropped so far", dropped
            )
            self._last_dropped = dropped
            self._warn_at = now + WARN_EVERY_S
