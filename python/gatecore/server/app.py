"""The RSGI application: one handler and a route table.

An inference route builds the request's context from the HTTP request (its id, headers and the
connection), runs the route's chain (pipeline/chain.py: body, auth, decode, route, limits, the upstream
call, the record) and writes the error the chain returns in the route's client API shape (OpenAI's,
or Anthropic's on /v1/messages) with its status. Answers themselves are written by the chain's last
stage, as they arrive. Anything unexpected is logged and answered with a generic 500, never a trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from granian._granian import RSGIProtocolClosed as ProtocolClosed

from gatecore.admin.router import MAX_BODY as ADMIN_MAX_BODY
from gatecore.admin.router import PREFIX as ADMIN_PREFIX
from gatecore.api.error_bodies import ANTHROPIC, GEMINI, JSON, OPENAI, ClientFormat
from gatecore.auth.stage import client_secret
from gatecore.config.load import ConfigError
from gatecore.config.source import read_config_from_process_env
from gatecore.console.app import PREFIX as CONSOLE_PREFIX
from gatecore.console.app import Console
from gatecore.errors import GatewayError, MethodNotAllowed, NotFound, StoreUnavailable
from gatecore.pipeline.chain import Chain
from gatecore.pipeline.read_body import read_body
from gatecore.prompts.call import PATH_PREFIX as PROMPTS_PREFIX
from gatecore.prompts.call import prompt_ref
from gatecore.prompts.openapi import prompt_document
from gatecore.request import RequestContext
from gatecore.server.gemini_api import METHODS as GEMINI_METHODS
from gatecore.server.gemini_api import PREFIX as GEMINI_PREFIX
from gatecore.server.gemini_api import GeminiApi
from gatecore.server.metrics_endpoint import MetricsEndpoint
from gatecore.server.models_api import ModelCatalog
from gatecore.server.reload import RELOAD_FILE_ENV, ConfigReloader, config_hash, read_token
from gatecore.server.request_id import request_id
from gatecore.server.responses_api import PREFIXES as RESPONSES_PREFIXES
from gatecore.server.responses_api import StoredResponsesApi
from gatecore.telemetry.unrouted import unrouted_endpoint
from gatecore.worker import Worker

log = logging.getLogger("gatecore.server")

Handler = Callable[[Any, Any], Awaitable[None]]
_JSON_HEADERS = [("content-type", JSON)]
_clock = time.perf_counter_ns
_OK = b'{"status":"ok"}'
_DRAINING = b'{"status":"draining"}'
_RELOAD_PATH = "/config/reload"  # under the admin prefix
_MAX_ERRORS = 100  # config errors listed in a refused reload's answer
# The cyclic GC's first generation is collected after 10,000 net allocations instead of 700. A
# request frees nearly all it allocates by reference counting; what survives a while (ledger rows
# waiting for their batch, in-flight contexts) made the default threshold run a collection every few
# hundred requests, about 0.8 µs a request with the ledger on. Measured: 0.06 µs at this threshold.
_GC_THRESHOLD = (10_000, 10, 10)
# Inference paths and the chain (Worker.chains) and client API of each.
_INFERENCE = {
    "/v1/chat/completions": ("chat", OPENAI),
    "/v1/completions": ("completions", OPENAI),
    "/v1/embeddings": ("embeddings", OPENAI),
    "/v1/messages": ("messages", ANTHROPIC),
    "/v1/rerank": ("rerank", OPENAI),
    "/v1/moderations": ("moderations", OPENAI),
    "/v1/audio/speech": ("audio_speech", OPENAI),
    "/v1/audio/transcriptions": ("audio_transcriptions", OPENAI),
    "/v1/images/generations": ("images", OPENAI),
    "/v1/responses": ("responses", OPENAI),
    "/v1/responses/compact": ("responses_compact", OPENAI),
}


class GatewayApp:
    """The RSGI target (`gatecore.server.app:app`). The config is loaded in each worker at start."""

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.catalog: ModelCatalog | None = None
        self.metrics: MetricsEndpoint | None = None
        self.gemini: GeminiApi | None = None
        self.routes: dict[str, dict[str, Handler]] = {}
        self._prompt_methods: dict[str, Handler] = {}
        self.stored: StoredResponsesApi | None = None
        self.console: Console | None = None
        self.reloader: ConfigReloader | None = None
        self.draining = False  # SIGTERM came: /readyz says 503 while requests in flight finish
        self._ready_body = b'{"status":"ok"}'

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # granian calls this before the loop runs, and __rsgi_del__ after it stopped.
        reload_file = os.environ.get(RELOAD_FILE_ENV)
        token = read_token(reload_file)  # before the config: a reload announced meanwhile is seen
        worker = Worker(read_config_from_process_env())
        loop.run_until_complete(worker.start())
        self.reloader = ConfigReloader(self, reload_file, token)
        loop.call_soon(self.reloader.start)
        # granian stops a worker on SIGTERM or SIGINT; SIGTERM first turns readiness off for
        # server.drain_delay_s (a load balancer stops sending), then stops the worker the way SIGINT does.
        loop.add_signal_handler(signal.SIGTERM, self._drain, loop)
        # What the worker built to serve (config, routes, the key table) lives as long as it does:
        # frozen out of the GC, full collections no longer walk the thousands of stored keys.
        gc.freeze()
        gc.set_threshold(*_GC_THRESHOLD)
        self.serve(worker)

    def serve(self, worker: Worker) -> None:
        """Serve with `worker` (started): build the route table from its chains. A config reload calls
        it again with a new worker: requests already running keep the chains they started with."""
        digest = config_hash(worker.config)
        self._ready_body = b'{"status":"ok","config_hash":"%s"}' % digest.encode()
        self.worker = worker
        self.catalog = ModelCatalog(worker.routes, worker.config.models)
        self.gemini = GeminiApi(worker.gemini_chains, worker.auth, self.catalog, self._unknown_path)
        self.console = Console(
            worker, self.catalog.list_body, worker.config.server.body_read_timeout_s, worker.config.auth.jwt
        )
        telemetry = worker.config.telemetry
        self.metrics = None
        if worker.metrics is not None:
            self.metrics = MetricsEndpoint(worker.metrics, worker.auth, telemetry.metrics_auth, digest)
        routes: dict[str, dict[str, Handler]] = {}
        for path, (api, fmt) in _INFERENCE.items():
            routes[path] = {"POST": self._inference(worker.chains[api], fmt)}
        routes["/v1/messages/count_tokens"] = {"POST": self._inference(worker.count_tokens, ANTHROPIC)}
        routes["/v1/responses/input_tokens"] = {"POST": self._inference(worker.input_tokens, OPENAI)}
        self.stored = StoredResponsesApi(worker.auth, worker.responses)
        # The same routes without the /v1 prefix, for clients configured with a bare base URL.
        routes.update({path.removeprefix("/v1"): methods for path, methods in list(routes.items())})
        routes["/v1/models"] = {"GET": self._models}
        self._prompt_methods = {
            "POST": self._published(worker.chains["prompts"]),
            "GET": self._prompt_document,
        }
        routes["/healthz"] = {"GET": self._healthz}
        routes["/readyz"] = {"GET": self._readyz}
        routes["/metrics"] = {"GET": self._metrics}
        self.routes = routes

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.draining = True
        if self.reloader is not None:
            loop.run_until_complete(self.reloader.aclose())
        if self.worker is not None:
            loop.run_until_complete(self.worker.aclose())

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.draining:
            return
        self.draining = True
        delay = self.worker.config.server.drain_delay_s if self.worker is not None else 0.0
        log.info("SIGTERM: draining (not ready), stopping in %.1f s", delay)
        loop.call_later(delay, os.kill, os.getpid(), signal.SIGINT)  # granian's own stop

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        path = scope.path
        methods = self.routes.get(path)
        if methods is None:
            if path.startswith("/v1/models/"):
                if scope.method == "POST" and path.rpartition(":")[2] in GEMINI_METHODS and self.gemini:
                    return await self.gemini.handle(scope, proto)  # Gemini's v1 API version
                methods = {"GET": self._model}
            elif path.startswith(PROMPTS_PREFIX):
                methods = self._prompt_methods
            elif path.startswith(RESPONSES_PREFIXES):
                methods = {"GET": self._stored, "DELETE": self._stored}
            elif path.startswith(ADMIN_PREFIX + "/"):
                return await self._admin(scope, proto)
            elif (path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")) and self.console:
                return await self.console.handle(scope, proto)
            elif path.startswith(GEMINI_PREFIX) and self.gemini is not None:
                return await self.gemini.handle(scope, proto)
            else:
                return self._unknown_path(scope, proto, path)
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

    def _unknown_path(self, scope: Any, proto: Any, path: str) -> None:
        """404, logged and counted under the path's API family (telemetry/unrouted.py)."""
        started = _clock()
        rid = request_id(scope.headers.get("x-request-id"))
        _error(proto, NotFound(f"Unknown path '{path[:200]}'."), _format_of(path), rid)
        worker = self.worker
        if worker is not None and worker.unrouted.recorders:
            ctx = RequestContext(unrouted_endpoint(path), rid, b"", started, scope.headers)
            ctx.status, ctx.error_code = 404, NotFound.code
            worker.unrouted.finished(ctx, _clock())

    def _inference(self, chain: Chain, fmt: ClientFormat) -> Handler:
        endpoint = chain.endpoint

        async def handle(scope: Any, proto: Any) -> None:
            started = _clock()
            headers = scope.headers
            rid = request_id(headers.get("x-request-id"))
            ctx = RequestContext(endpoint, rid, b"", started, headers, proto)
            error = await chain.run(ctx, scope.path)
            if error is not None:
                overhead = _clock() - started - ctx.upstream_ns
                _error(proto, error, fmt, rid, ("x-gatecore-overhead-ms", f"{overhead / 1e6:.3f}"))

        return handle

    def _published(self, chain: Chain) -> Handler:
        """`POST /v1/prompts/{name}`: the prompt chain, with the prompt the path names."""
        endpoint = chain.endpoint

        async def handle(scope: Any, proto: Any) -> None:
            started = _clock()
            rid = request_id(scope.headers.get("x-request-id"))
            ctx = RequestContext(endpoint, rid, b"", started, scope.headers, proto)
            ctx.prompt = prompt_ref(scope.path, scope.query_string)
            error = await chain.run(ctx, scope.path)
            if error is not None:
                overhead = _clock() - started - ctx.upstream_ns
                _error(proto, error, OPENAI, rid, ("x-gatecore-overhead-ms", f"{overhead / 1e6:.3f}"))

        return handle

    async def _prompt_document(self, scope: Any, proto: Any) -> None:
        """`GET /v1/prompts/{name}/openapi.json` for a key that may call the prompt."""
        worker = self.worker
        assert worker is not None
        key = await worker.auth.authenticate(client_secret(scope.headers))
        name = scope.path[len(PROMPTS_PREFIX) :].removesuffix("/openapi.json")
        if not scope.path.endswith("/openapi.json"):
            raise MethodNotAllowed("Use POST to call a prompt.")
        proto.response_bytes(200, _JSON_HEADERS, await prompt_document(worker.prompts, key, name))

    async def _models(self, scope: Any, proto: Any) -> None:
        worker, catalog = self.worker, self.catalog
        assert worker is not None and catalog is not None
        key = await worker.auth.authenticate(client_secret(scope.headers))
        proto.response_bytes(200, _JSON_HEADERS, catalog.list_body(key))

    async def _model(self, scope: Any, proto: Any) -> None:
        worker, catalog = self.worker, self.catalog
        assert worker is not None and catalog is not None
        key = await worker.auth.authenticate(client_secret(scope.headers))
        body = catalog.model_body(key, scope.path[len("/v1/models/") :])
        proto.response_bytes(200, _JSON_HEADERS, body)

    async def _admin(self, scope: Any, proto: Any) -> None:
        worker = self.worker
        assert worker is not None
        try:
            admin = worker.admin
            if admin is None:
                raise StoreUnavailable("The admin API is unavailable: the store could not be opened.")
            headers = scope.headers
            path = scope.path[len(ADMIN_PREFIX) :]
            # A key, or a console session (with its CSRF token for a change): before any body byte.
            assert self.console is not None
            caller = await self.console.admin_caller(admin, scope, path)
            if path == _RELOAD_PATH and scope.method == "POST":
                caller.require_admin()
                return await self._reload(proto, caller.actor)
            timeout_s = worker.config.server.body_read_timeout_s
            body = await read_body(headers, proto, ADMIN_MAX_BODY, worker.sweeper, timeout_s)
            status, answer, content_type = await admin.handle(
                caller, scope.method, path, scope.query_string, body
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

    async def _reload(self, proto: Any, actor: str) -> None:
        """`POST /admin/v1/config/reload`: this worker reloads, then the others (server/reload.py)."""
        assert self.reloader is not None
        try:
            digest = await self.reloader.reload_and_announce()
        except ConfigError as exc:
            errors = [error[:300] for error in exc.errors[:_MAX_ERRORS]]
            await self._audit(actor, "config.reload_refused", "", {"errors": errors})
            message = "The config was refused; the old one keeps serving. " + "; ".join(errors[:5])
            body = msgspec.json.encode(
                {
                    "error": {
                        "message": message[:2000],
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_config",
                        "errors": errors,
                    }
                }
            )
            return _respond(proto, 400, _JSON_HEADERS, body)
        await self._audit(actor, "config.reload", digest, {"config_hash": digest})
        answer = {"status": "reloaded", "config_hash": digest}
        _respond(proto, 200, _JSON_HEADERS, msgspec.json.encode(answer))

    async def _audit(self, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        """An audit-log entry for an admin action outside the admin API's own routes (best effort:
        the action itself already happened)."""
        admin = self.worker.admin if self.worker is not None else None
        if admin is None:
            return
        try:
            await admin.repository.record_action(actor, action, "config", target, detail)
        except GatewayError as exc:
            log.warning("cannot write the audit entry of %s: %s", action, exc)

    async def _stored(self, scope: Any, proto: Any) -> None:
        assert self.stored is not None
        await self.stored.handle(scope, proto)

    async def _metrics(self, scope: Any, proto: Any) -> None:
        if self.metrics is None:
            raise NotFound("Metrics are off (telemetry.metrics: false).")
        headers, body = await self.metrics.answer(scope.headers)
        proto.response_bytes(200, headers, body)

    async def _healthz(self, scope: Any, proto: Any) -> None:
        proto.response_bytes(200, _JSON_HEADERS, _OK)

    async def _readyz(self, scope: Any, proto: Any) -> None:
        if self.draining:
            proto.response_bytes(503, _JSON_HEADERS, _DRAINING)
        elif self.worker is None or not self.worker.ready:
            proto.response_bytes(503, _JSON_HEADERS, b'{"status":"starting"}')
        else:
            proto.response_bytes(200, _JSON_HEADERS, self._ready_body)


def _format_of(path: str) -> ClientFormat:
    """The client API a path belongs to, for its error shape."""
    if path.startswith(("/v1/messages", "/messages")):
        return ANTHROPIC
    if path.startswith("/v1beta/"):
        return GEMINI
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
