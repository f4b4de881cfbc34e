"""The Gemini API's paths: `/v1beta/models/{model}:{method}` and `GET /v1beta/models[/{model}]`
(and `POST /v1/models/{model}:{method}`, the API's `v1` version).

The model sits in the path, so these are matched by prefix, not in the route table. Each method has
its chain (worker.gemini_chains: `generate`, `stream_sse`, `stream_json`, `count`); the model from the
path goes into `ctx.client_model` and a `key=` query parameter into `ctx.api_key` before the chain
runs (the auth stage reads it when no key header came, still before any body is read). Errors are
written in Gemini's shape (`{"error": {"code", "message", "status"}}`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from gatecore.api.error_bodies import GEMINI, JSON
from gatecore.auth.stage import AuthStage, client_secret
from gatecore.errors import GatewayError, InvalidRequest, MethodNotAllowed
from gatecore.pipeline.chain import Chain
from gatecore.request import RequestContext
from gatecore.server.models_api import ModelCatalog
from gatecore.server.request_id import request_id

PREFIX = "/v1beta/models"
V1_PREFIX = "/v1/models/"  # the API's `v1` version: only its POST methods (GET /v1/models is OpenAI's)
METHODS = ("generateContent", "streamGenerateContent", "countTokens")
_METHODS = METHODS
_MAX_QUERY = 4096
_JSON_HEADERS = [("content-type", JSON)]
_clock = time.perf_counter_ns


def query_key(query: str) -> str | None:
    """The `key=` query parameter (Gemini's API key in the URL), or None."""
    return _query(query).get("key")


def _query(query: str) -> dict[str, str]:
    if not query:
        return {}
    if len(query) > _MAX_QUERY:
        raise InvalidRequest(f"The query string is longer than {_MAX_QUERY} characters.")
    return {name: values[-1] for name, values in parse_qs(query, keep_blank_values=True).items()}


class GeminiApi:
    """Serves the Gemini paths of one worker; a path or method it does not know goes to `unknown`
    (the server's 404, logged and counted as unrouted)."""

    __slots__ = ("auth", "catalog", "chains", "unknown")

    def __init__(
        self,
        chains: dict[str, Chain],
        auth: AuthStage,
        catalog: ModelCatalog,
        unknown: Callable[[Any, Any, str], None],
    ):
        self.chains = chains
        self.auth = auth
        self.catalog = catalog
        self.unknown = unknown

    async def handle(self, scope: Any, proto: Any) -> None:
        """Answer one request under `/v1beta/`; never raises."""
        rid = request_id(scope.headers.get("x-request-id"))
        try:
            await self._handle(scope, proto, rid)
        except GatewayError as exc:
            write_error(proto, exc, rid)

    async def _handle(self, scope: Any, proto: Any, rid: str) -> None:
        path: str = scope.path
        query = _query(scope.query_string)
        rest = path[len(PREFIX) :] if path.startswith(PREFIX) else path[len(V1_PREFIX) - 1 :]
        if rest in ("", "/"):
            _only(scope, "GET")
            await self._list(scope, proto, query)
            return
        if not rest.startswith("/"):
            self.unknown(scope, proto, path)
            return
        name, _, method = unquote(rest[1:]).rpartition(":")
        if not name:  # `GET /v1beta/models/{model}`
            _only(scope, "GET")
            await self._model(scope, proto, query, method)
            return
        if method not in _METHODS:  # embedContent, batchGenerateContent, …
            self.unknown(scope, proto, path)
            return
        _only(scope, "POST")
        if method == "countTokens":
            chain = self.chains["count"]
        elif method == "generateContent":
            chain = self.chains["generate"]
        else:
            chain = self.chains["stream_sse" if query.get("alt") == "sse" else "stream_json"]
        started = _clock()
        ctx = RequestContext(chain.endpoint, rid, b"", started, scope.headers, proto)
        ctx.client_model = name.removeprefix("models/")
        ctx.api_key = query.get("key")
        error = await chain.run(ctx, path)
        if error is not None:
            overhead = _clock() - started - ctx.upstream_ns
            write_error(proto, error, rid, ("x-gatecore-overhead-ms", f"{overhead / 1e6:.3f}"))

    async def _list(self, scope: Any, proto: Any, query: dict[str, str]) -> None:
        key = await self.auth.authenticate(client_secret(scope.headers) or query.get("key"))
        models = self.catalog.list_body(key)
        listed = [_gemini_model(m) for m in orjson.loads(models)["data"]]
        proto.response_bytes(200, _JSON_HEADERS, orjson.dumps({"models": listed}))

    async def _model(self, scope: Any, proto: Any, query: dict[str, str], name: str) -> None:
        key = await self.auth.authenticate(client_secret(scope.headers) or query.get("key"))
        body = self.catalog.model_body(key, name.removeprefix("models/"))
        proto.response_bytes(200, _JSON_HEADERS, orjson.dumps(_gemini_model(orjson.loads(body))))


def _gemini_model(model: dict[str, Any]) -> dict[str, Any]:
    """Gemini's Model object for an OpenAI model object of the catalog."""
    out: dict[str, Any] = {
        "name": "models/" + model["id"],
        "version": "001",
        "displayName": model["id"],
        "supportedGenerationMethods": list(_METHODS),
    }
    window = model.get("context_window")
    if window is not None:
        out["inputTokenLimit"] = window
    return out


def _only(scope: Any, method: str) -> None:
    if scope.method != method:
        error = MethodNotAllowed(f"Method {scope.method[:20]} is not allowed here; use {method}.")
        error.headers = [("allow", method)]
        raise error


def write_error(
    proto: Any, exc: GatewayError, rid: str | None = None, overhead: tuple[str, str] | None = None
) -> None:
    """Answer with `exc` in Gemini's error shape (nothing when the answer already started)."""
    headers = [*_JSON_HEADERS, *exc.headers]
    if rid is not None:
        headers.append(("x-request-id", rid))
    if overhead is not None:
        headers.append(overhead)
    with contextlib.suppress(RuntimeError):
        proto.response_bytes(exc.status, headers, GEMINI.render_error(exc))
