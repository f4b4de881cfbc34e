"""`/ui/`: the console and developer portal, served by the gateway itself (issue 22).

Pages are HTML rendered here from the admin API's answers, read as the signed-in user; the browser
loads one stylesheet and one small script from /ui/assets/ and nothing else (no CDN, no font: it works
air-gapped). Signing in with a key opens a session (console/sessions.py) whose cookie also
authenticates `/admin/v1/` calls, with the key's role; those that change anything need the
session's CSRF token. A key without an admin role (a developer's) sees the portal only.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from typing import Any, Protocol
from urllib.parse import parse_qs

import orjson

from gatecore.admin.access import Caller
from gatecore.admin.router import AdminApi
from gatecore.auth.stage import AuthStage, client_secret
from gatecore.config.jwt import JwtConfig
from gatecore.console.html import esc, page
from gatecore.console.oidc import COOKIE as FLOW_COOKIE
from gatecore.console.oidc import FLOW_TTL_S, OidcSignIn
from gatecore.console.pages import PAGES, TITLES, View, portal
from gatecore.console.queries import Rollup
from gatecore.console.sessions import (
    Sessions,
    check_csrf,
    clear_cookie,
    cookie_of,
    csrf_token,
    session_id_of,
    set_cookie,
)
from gatecore.errors import (
    AuthenticationFailed,
    Forbidden,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    StoreUnavailable,
)
from gatecore.pipeline.read_body import read_body
from gatecore.policy.key_policy import KeyPolicy
from gatecore.pricing.book import PriceBook
from gatecore.prompts.openapi import prompt_document
from gatecore.prompts.stage import PromptStage
from gatecore.routing.table import RouteTable
from gatecore.store.base import Store
from gatecore.upstream.deadlines import DeadlineSweeper

PREFIX = "/ui"
MAX_FORM = 4096
MAX_PROMPTS = 200  # published prompts the portal looks at
_SECURITY = [
    (
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
]
_HTML = [("content-type", "text/html; charset=utf-8"), *_SECURITY]
_ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}


class Backend(Protocol):
    """What the console reads of the worker (the admin API and the store appear once it is open)."""

    admin: AdminApi | None
    store: Store | None
    auth: AuthStage
    sweeper: DeadlineSweeper
    routes: RouteTable
    prices: PriceBook
    prompts: PromptStage


def _asset(name: str) -> bytes:
    return files("gatecore.console").joinpath("assets", name).read_bytes()


class Console:
    """The /ui/ handler of one worker."""

    def __init__(
        self,
        worker: Backend,
        models: Callable[[KeyPolicy | None], bytes],
        body_timeout_s: float,
        jwt: JwtConfig | None = None,
    ):
        self.oidc = OidcSignIn(worker.auth, jwt.issuer, jwt.console) if jwt and jwt.console else None
        self.worker = worker
        self.models = models
        self.body_timeout_s = body_timeout_s
        self.assets = {name: (_asset(name), kind) for name, kind in _ASSETS.items()}
        self._sessions: Sessions | None = None
        self.rollup = Rollup()

    @property
    def sessions(self) -> Sessions:
        store = self.worker.store
        if store is None or self.worker.admin is None:
            raise StoreUnavailable("The console is unavailable: the store could not be opened.")
        if self._sessions is None or self._sessions.store is not store:
            self._sessions = Sessions(store, self.worker.auth)
        return self._sessions

    async def admin_caller(self, admin: AdminApi, scope: Any, path: str) -> Caller:
        """The caller of an `/admin/v1/` request: its bearer key, else its console session (a change
        then needs the session's CSRF token in `x-csrf-token`: 403 without it)."""
        headers = scope.headers
        secret = client_secret(headers)
        if secret is None:
            session_id = session_id_of(headers)
            if session_id is not None:
                policy = await self.sessions.policy(session_id)
                if scope.method not in ("GET", "HEAD"):
                    check_csrf(session_id, headers.get("x-csrf-token"))
                return admin.caller_of(policy, path)
        return await admin.caller(secret, path)

    async def handle(self, scope: Any, proto: Any) -> None:
        """Answer one request under /ui/."""
        path = scope.path[len(PREFIX) :].lstrip("/")
        method = scope.method
        try:
            if path.startswith("assets/"):
                asset = self.assets.get(path[len("assets/") :])
                if asset is None:
                    raise NotFound("No such asset.")
                headers = [("content-type", asset[1]), *_SECURITY[:3], ("cache-control", "max-age=300")]
                proto.response_bytes(200, headers, asset[0])
                return
            if path == "sign-in":
                if method != "POST":
                    return _redirect(proto, "/ui/")
                return await self._sign_in(scope, proto)
            if path in ("oidc/start", "oidc/callback") and self.oidc is not None:
                return await self._oidc(scope, proto, path)
            if path == "sign-out":
                if method != "POST":
                    raise MethodNotAllowed("Sign out with POST.")
                return await self._sign_out(scope, proto)
            if method not in ("GET", "HEAD"):
                raise MethodNotAllowed("Console pages are read with GET; changes go to /admin/v1/.")
            await self._page(scope, proto, path)
        except GatewayError as exc:
            status = exc.status
            proto.response_bytes(status, _HTML, page("Error", f'<p role="alert">{esc(exc.message)}</p>'))

    async def _page(self, scope: Any, proto: Any, path: str) -> None:
        if path not in PAGES and path != "portal":
            raise NotFound("There is no such console page.")
        session_id = session_id_of(scope.headers)
        policy = None
        if session_id is not None:
            try:
                policy = await self.sessions.policy(session_id)
            except AuthenticationFailed:
                policy = None
        if policy is None or session_id is None:
            if path:
                return _redirect(proto, "/ui/")
            proto.response_bytes(200, _HTML, _sign_in_page(oidc=self.oidc is not None))
            return
        admin = self.worker.admin
        store = self.worker.store
        assert admin is not None and store is not None  # the session was found in the store
        if path != "portal" and policy.role is None:
            return _redirect(proto, "/ui/portal")
        caller = admin.caller_of(policy, "/access-requests" if path == "portal" else "")

        async def read(api_path: str, query: str) -> Any:
            _, answer, _ = await admin.handle(caller, "GET", api_path, query, b"")
            assert isinstance(answer, bytes)
            return orjson.loads(answer) if answer else None

        query = {name: values[-1][:500] for name, values in parse_qs(scope.query_string).items()}

        def models(own: bool) -> Any:
            listed = orjson.loads(self.models(policy if own else None))["data"]
            for model in listed:
                model["price"] = self._price(model["id"])
            return listed

        async def prompt_docs() -> list[tuple[str, bytes]]:
            """The published prompts this user may call, with each one's OpenAPI document."""
            catalog = self.worker.prompts.catalog
            if catalog is None:
                return []
            found = []
            for head in (await catalog.repository.heads(None, True))[:MAX_PROMPTS]:
                try:
                    found.append((head.name, await prompt_document(self.worker.prompts, policy, head.name)))
                except GatewayError:
                    continue  # one it may not call (or that no longer compiles)
            return found

        view = View(read, caller.scope, store, query, models, self.rollup)
        view.prompt_docs = prompt_docs
        if path == "portal":
            host = scope.headers.get("host") or "127.0.0.1"
            body = await portal(view, f"{scope.scheme}://{host}")
        else:
            body = await PAGES[path](view)
        html = page(
            TITLES[path], body, current=path, role=policy.role, csrf=csrf_token(session_id), who=policy.name
        )
        proto.response_bytes(200, _HTML, html)

    def _price(self, model: str) -> tuple[float, float] | None:
        """USD per 1M input and output tokens on the model's first deployment, when known."""
        route = self.worker.routes.find(model)
        if route is None or not route.deployments or route.deployments[0].model == "*":
            return None
        first = route.deployments[0]
        price = self.worker.prices.price_of(first, first.model)
        return None if price is None else (price.input_per_1m, price.output_per_1m)

    async def _sign_in(self, scope: Any, proto: Any) -> None:
        _same_origin(scope)
        body = await read_body(scope.headers, proto, MAX_FORM, self.worker.sweeper, self.body_timeout_s)
        form = parse_qs(body.decode("utf-8", "replace"))
        secret = (form.get("key") or [""])[-1].strip()
        try:
            if not secret:
                raise AuthenticationFailed("Enter a key.")
            session_id, policy = await self.sessions.open(secret)
        except AuthenticationFailed as exc:
            proto.response_bytes(401, _HTML, _sign_in_page(exc.message, oidc=self.oidc is not None))
            return
        where = "/ui/" if policy.role is not None else "/ui/portal"
        cookie = set_cookie(session_id, scope.scheme == "https")
        proto.response_bytes(303, [("location", where), ("set-cookie", cookie), *_SECURITY], b"")

    async def _oidc(self, scope: Any, proto: Any, path: str) -> None:
        assert self.oidc is not None
        secure = scope.scheme == "https"
        redirect_uri = f"{scope.scheme}://{scope.headers.get('host') or '127.0.0.1'}/ui/oidc/callback"
        flags = f"; Path=/ui/oidc; HttpOnly; SameSite=Lax{'; Secure' if secure else ''}"
        if path == "oidc/start":
            where, flow = await self.oidc.start(redirect_uri)
            cookie = f"{FLOW_COOKIE}={flow}; Max-Age={FLOW_TTL_S}{flags}"
            proto.response_bytes(303, [("location", where), ("set-cookie", cookie), *_SECURITY], b"")
            return
        query = {name: values[-1][:2000] for name, values in parse_qs(scope.query_string).items()}
        if "code" not in query or "state" not in query:
            message = "The identity provider refused the sign-in."
            proto.response_bytes(401, _HTML, _sign_in_page(message, oidc=True))
            return
        try:
            identity = await self.oidc.finish(
                cookie_of(scope.headers, FLOW_COOKIE, 400), query["state"], query["code"], redirect_uri
            )
            session_id, policy = await self.sessions.open_token(identity)
        except AuthenticationFailed as exc:
            proto.response_bytes(401, _HTML, _sign_in_page(exc.message, oidc=True))
            return
        where = "/ui/" if policy.role is not None else "/ui/portal"
        headers = [
            ("location", where),
            ("set-cookie", set_cookie(session_id, secure)),
            ("set-cookie", f"{FLOW_COOKIE}=; Max-Age=0{flags}"),
            *_SECURITY,
        ]
        proto.response_bytes(303, headers, b"")

    async def _sign_out(self, scope: Any, proto: Any) -> None:
        _same_origin(scope)
        body = await read_body(scope.headers, proto, MAX_FORM, self.worker.sweeper, self.body_timeout_s)
        session_id = session_id_of(scope.headers)
        if session_id is not None:
            form = parse_qs(body.decode("utf-8", "replace"))
            check_csrf(session_id, (form.get("csrf") or [""])[-1])
            await self.sessions.close(session_id)
        cookie = clear_cookie(scope.scheme == "https")
        proto.response_bytes(303, [("location", "/ui/"), ("set-cookie", cookie), *_SECURITY], b"")


def _same_origin(scope: Any) -> None:
    """403 for a form posted from another site (login CSRF): its Origin names another host."""
    origin = scope.headers.get("origin")
    host = scope.headers.get("host")
    if origin and origin != "null" and host and origin.split("://", 1)[-1] != host:
        raise Forbidden("Sign-in and sign-out are accepted from the console's own pages only.")


def _redirect(proto: Any, where: str) -> None:
    proto.response_bytes(303, [("location", where), *_SECURITY], b"")


def _sign_in_page(error: str = "", *, oidc: bool = False) -> bytes:
    alert = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    if oidc:
        alert += '<p><a class="sso" href="/ui/oidc/start">Sign in with your identity provider</a></p>'
    form = (
        f'{alert}<form class="signin" method="post" action="/ui/sign-in">'
        '<label for="key">API key</label>'
        '<input id="key" name="key" type="password" autocomplete="off" required>'
        '<button type="submit">Sign in</button></form>'
        "<p>Operators sign in with an admin, team_admin or viewer key (or the master key); "
        "developers with their own key, to see the models they may use and ask for access.</p>"
    )
    return page("Sign in", form)
