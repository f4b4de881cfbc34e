"""The RSGI application: one handler, a route table, and the inference request flow.

Per request: read the body (size-checked), run the pipeline stages (auth, routing, …), call the
chosen deployment, and relay its answer whole or as a stream. Any GatewayError becomes an error in the
route's client API shape (OpenAI's, or Anthropic's on /v1/messages) with its status; anything unexpected
is logged and answered with a generic 500, never a trace.

Anthropic Messages requests are translated into the hub format (an OpenAI chat request) before the
stages run, and their answers translated back by the context's encoder (translate/).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from granian._granian import RSGIProtocolClosed as ProtocolClosed

from gatecore.admin.router import MAX_BODY as ADMIN_MAX_BODY
from gatecore.admin.router import PREFIX as ADMIN_PREFIX
from gatecore.api.openai import ChatFields, CompletionFields, EmbeddingFields
from gatecore.config.source import read_config_from_process_env
from gatecore.errors import UPSTREAM_ERRORS, GatewayError, MethodNotAllowed, NotFound, StoreUnavailable
from gatecore.pipeline.attempts import call_upstream
from gatecore.pipeline.gateway import Gateway, build_gateway
from gatecore.request import CHAT, COMPLETIONS, EMBEDDINGS, BodyCapture, Endpoint, RequestContext
from gatecore.routing.capabilities import translated_needs
from gatecore.routing.table import RouteStage
from gatecore.server.errors import ANTHROPIC, JSON, OPENAI, ClientFormat
from gatecore.server.headers import client_secret, request_id, request_tags, run_tag
from gatecore.server.models_api import ModelCatalog
from gatecore.server.request_body import decode_fields, read_body
from gatecore.telemetry.body_log import capture_limit
from gatecore.telemetry.stage_timing import StageTiming, allowed
from gatecore.translate.anthropic_request_to_hub import (
    decode_messages_request,
    openai_chat_request,
    translate_messages_request,
)
from gatecore.translate.anthropic_tokens import count_request_tokens
from gatecore.translate.hub_stream_to_anthropic import AnthropicEncoder

log = logging.getLogger("gatecore.server")

Handler = Callable[[Any, Any], Awaitable[None]]
# Fills the context from the client's body (policy fields; a translated body for non-OpenAI clients).
Prepare = Callable[[RequestContext], None]
_JSON_HEADERS = [("content-type", JSON)]
_clock = time.perf_counter_ns
_OK = b'{"status":"ok"}'
# The cyclic GC's first generation is collected after 10,000 net allocations instead of 700. A
# request frees nearly all it allocates by reference counting; what survives a while (ledger rows
# waiting for their batch, in-flight contexts) made the default threshold run a collection every few
# hundred requests, about 0.8 µs a request with the ledger on. Measured: 0.06 µs at this threshold.
_GC_THRESHOLD = (10_000, 10, 10)


class GatewayApp:
    """The RSGI target (`gatecore.server.app:app`). The config is loaded in each worker at start."""

    def __init__(self) -> None:
        self.gateway: Gateway | None = None
        self.catalog: ModelCatalog | None = None
        inference = {
            "/v1/chat/completions": self._openai_route(CHAT, msgspec.json.Decoder(ChatFields)),
            "/v1/completions": self._openai_route(COMPLETIONS, msgspec.json.Decoder(CompletionFields)),
            "/v1/embeddings": self._openai_route(EMBEDDINGS, msgspec.json.Decoder(EmbeddingFields)),
            "/v1/messages": self._messages,
            "/v1/messages/count_tokens": self._count_tokens,
        }
        self.routes: dict[str, dict[str, Handler]] = {path: {"POST": h} for path, h in inference.items()}
        # The same routes without the /v1 prefix, for clients configured with a bare base URL.
        self.routes.update({path.removeprefix("/v1"): methods for path, methods in list(self.routes.items())})
        self.routes["/v1/models"] = {"GET": self._models}
        self.routes["/healthz"] = {"GET": self._healthz}
        self.routes["/readyz"] = {"GET": self._readyz}
        self.routes["/metrics"] = {"GET": self._metrics}

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # granian calls this before the loop runs, and __rsgi_del__ after it stopped.
        gateway = build_gateway(read_config_from_process_env())
        loop.run_until_complete(gateway.start())
        # What the worker built to serve (config, routes, the key table) lives as long as it does:
        # frozen out of the GC, full collections no longer walk the thousands of stored keys.
        gc.freeze()
        gc.set_threshold(*_GC_THRESHOLD)
        self.gateway = gateway
        self.catalog = ModelCatalog(gateway.routes, gateway.config.models)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.gateway is not None:
            loop.run_until_complete(self.gateway.aclose())

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        path = scope.path
        methods = self.routes.get(path)
        if methods is None:
            if path.startswith("/v1/models/"):
                methods = {"GET": self._model}
            elif path.startswith(ADMIN_PREFIX + "/"):
                return await self._admin(scope, proto)
            else:
                return _error(proto, NotFound(f"Unknown path '{path[:200]}'."), _format_of(path))
        handler = methods.get(scope.method)
        if handler is None:
            allow = ", ".join(methods)
            error = MethodNotAllowed(f"Method {scope.method[:20]} is not allowed here; use {allow}.")
            error.headers = [("allow", allow)]
            return _error(proto, error, _format_of(path))
        try:
            await handler(scope, proto)
        except GatewayError as exc:
            _error(proto, exc, _format_of(path))
        except Exception:
            log.exception("unhandled error on %s %s", scope.method, path[:200])
            _respond(proto, 500, _JSON_HEADERS, _format_of(path).internal_error)

    def _openai_route(self, endpoint: Endpoint, decoder: msgspec.json.Decoder[Any]) -> Handler:
        def prepare(ctx: RequestContext) -> None:
            decode_fields(ctx, decoder)

        async def handle(scope: Any, proto: Any) -> None:
            await self._inference(endpoint, prepare, OPENAI, scope, proto)

        return handle

    async def _messages(self, scope: Any, proto: Any) -> None:
        """`POST /v1/messages`: an Anthropic client, served through the hub format."""
        await self._inference(CHAT, _prepare_messages, ANTHROPIC, scope, proto)

    async def _inference(
        self, endpoint: Endpoint, prepare: Prepare, fmt: ClientFormat, scope: Any, proto: Any
    ) -> None:
        started = time.perf_counter_ns()
        gateway = self.gateway
        assert gateway is not None
        headers = scope.headers
        ctx = RequestContext(endpoint, request_id(headers.get("x-request-id")), b"", started)
        tracing = gateway.tracing
        if tracing is not None:  # all that traces cost a request when they are off
            tracing.begin(ctx, scope.path, headers)
        gateway.in_flight += 1
        try:
            ctx.body = await read_body(headers, proto, gateway.max_body_bytes)
            ctx.api_key = client_secret(headers)
            if gateway.tag_routing:
                ctx.tags = request_tags(headers.get("x-gatecore-tags"))
            await gateway.auth(ctx)
            # After auth: a bad run id is the client's 400 only once its key is known to be good.
            ctx.run_id = run_tag(headers.get("x-gatecore-run-id"))
            if ctx.key is not None and ctx.key.log_bodies and gateway.body_log_bytes:
                ctx.body_capture = BodyCapture(capture_limit(gateway.body_log_bytes, ctx.api_key))
            # Each stage's end (telemetry/stage_timing.py, the stage histogram, the trace's spans).
            ends = ctx.stage_ends
            ends.append(_clock())
            prepare(ctx)
            ends.append(_clock())
            for stage in gateway.stages:
                await stage(ctx)
                ends.append(_clock())
            debug = headers.get("x-gatecore-debug")
            if debug is not None and allowed(debug, ctx.key):
                ctx.timing = StageTiming(gateway.stage_names, started, ends)
            await call_upstream(gateway, ctx, proto)
        except GatewayError as exc:
            ctx.status = exc.status
            ctx.error_code = exc.code
            ctx.error_upstream = isinstance(exc, UPSTREAM_ERRORS)
            if ctx.client_gone:
                ctx.status = 499
            else:
                overhead = _clock() - started - ctx.upstream_ns
                _error(proto, exc, fmt, ctx.request_id, ("x-gatecore-overhead-ms", f"{overhead / 1e6:.3f}"))
        finally:
            ctx.upstream = None
            if gateway.recorders:
                gateway.finished(ctx, time.perf_counter_ns())
            gateway.in_flight -= 1

    async def _count_tokens(self, scope: Any, proto: Any) -> None:
        """`POST /v1/messages/count_tokens`: `{"input_tokens": n}` with the routed model's tokenizer."""
        gateway = self.gateway
        assert gateway is not None
        headers = scope.headers
        ctx = RequestContext(CHAT, request_id(headers.get("x-request-id")), b"", time.perf_counter_ns())
        try:
            body = await read_body(headers, proto, gateway.max_body_bytes)
            ctx.api_key = client_secret(headers)
            await gateway.auth(ctx)
            request, members = decode_messages_request(body)
            openai_chat_request(request, members)  # the same 400s as /v1/messages for what cannot go
            ctx.client_model = request.model
            await RouteStage(gateway.routes)(ctx)  # 404 unknown model, 403 not allowed
            assert ctx.deployment is not None
            tokens = count_request_tokens(request, ctx.deployment.provider.tokenizer)
        except GatewayError as exc:
            return _error(proto, exc, ANTHROPIC, ctx.request_id)
        headers_out = [*_JSON_HEADERS, ("x-request-id", ctx.request_id)]
        proto.response_bytes(200, headers_out, b'{"input_tokens":%d}' % tokens)

    async def _models(self, scope: Any, proto: Any) -> None:
        gateway, catalog = self.gateway, self.catalog
        assert gateway is not None and catalog is not None
        key = await gateway.auth.authenticate(client_secret(scope.headers))
        proto.response_bytes(200, _JSON_HEADERS, catalog.list_body(key))

    async def _model(self, scope: Any, proto: Any) -> None:
        gateway, catalog = self.gateway, self.catalog
        assert gateway is not None and catalog is not None
        key = await gateway.auth.authenticate(client_secret(scope.headers))
        body = catalog.model_body(key, scope.path[len("/v1/models/") :])
        proto.response_bytes(200, _JSON_HEADERS, body)

    async def _admin(self, scope: Any, proto: Any) -> None:
        gateway = self.gateway
        assert gateway is not None
        try:
            admin = gateway.admin
            if admin is None:
                raise StoreUnavailable("The admin API is unavailable: the store could not be opened.")
            body = await read_body(scope.headers, proto, ADMIN_MAX_BODY)
            status, answer, content_type = await admin.handle(
                scope.method,
                scope.path[len(ADMIN_PREFIX) :],
                scope.query_string,
                client_secret(scope.headers),
                body,
            )
        except GatewayError as exc:
            return _error(proto, exc, OPENAI)
        except Exception:
            log.exception("unhandled error on %s %s", scope.method, scope.path[:200])
            return _respond(proto, 500, _JSON_HEADERS, OPENAI.internal_error)
        if isinstance(answer, bytes):
            _respond(proto, status, [("content-type", content_type)] if answer else [], answer)
        else:
            await _stream_admin(proto, status, content_type, answer, scope.path)

    async def _metrics(self, scope: Any, proto: Any) -> None:
        gateway = self.gateway
        assert gateway is not None
        if gateway.metrics is None:
            raise NotFound("Metrics are off (telemetry.metrics: false).")
        headers, body = await gateway.metrics.answer(scope.headers)
        proto.response_bytes(200, headers, body)

    async def _healthz(self, scope: Any, proto: Any) -> None:
        proto.response_bytes(200, _JSON_HEADERS, _OK)

    async def _readyz(self, scope: Any, proto: Any) -> None:
        if self.gateway is None or not self.gateway.ready:
            proto.response_bytes(503, _JSON_HEADERS, b'{"status":"starting"}')
        else:
            proto.response_bytes(200, _JSON_HEADERS, _OK)


def _prepare_messages(ctx: RequestContext) -> None:
    request = translate_messages_request(ctx, ctx.body)
    ctx.needs = translated_needs(ctx.body, bool(request.tools))
    thinking = request.thinking is not None and request.thinking.type != "disabled"
    stop_sequences = tuple(request.stop_sequences or ())
    ctx.encoder = AnthropicEncoder(ctx.client_model, ctx.request_id, stop_sequences, thinking, ctx.stream)


def _format_of(path: str) -> ClientFormat:
    """The client API a path belongs to, for its error shape."""
    if path.startswith(("/v1/messages", "/messages")):
        return ANTHROPIC
    return OPENAI


def _error(
    proto: Any,
    exc: GatewayError,
    fmt: ClientFormat,
    rid: str | None = None,
    overhead: tuple[str, str] | None = None,
) -> None:
    headers = [*_JSON_HEADERS, *exc.headers]
    if rid is not None:
        headers.append(("x-request-id", rid))
    if overhead is not None:
        headers.append(overhead)
    _respond(proto, exc.status, headers, fmt.render_error(exc))


async def _stream_admin(
    proto: Any, status: int, content_type: str, parts: AsyncIterator[bytes], path: str
) -> None:
    """Write an admin answer part by part (a run export). The status is already sent: a store error
    half-way ends the body early (a CSV without its last rows, a JSON document left open)."""
    transport = proto.response_stream(status, [("content-type", content_type)])
    try:
        async for part in parts:
            await transport.send_bytes(part)
    except ProtocolClosed:
        pass  # the client went away
    except Exception:
        log.exception("admin answer on %s broke off", path[:200])
    finally:
        transport = None  # granian ends the response when the transport is freed


def _respond(proto: Any, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    with contextlib.suppress(RuntimeError):  # the response already started or the client is gone
        proto.response_bytes(status, headers, body)


app = GatewayApp()
