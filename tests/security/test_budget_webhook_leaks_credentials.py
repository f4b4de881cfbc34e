"""Issue 17, low: the budget alert webhook sent the URL's userinfo in its `Host` header, so the
webhook's `user:password` went on the wire (in clear over http) and into the receiver's logs. `Host`
is now host[:port] only."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..e2e.conftest import make_client
from ..e2e.gateway import GatewayFactory
from ..e2e.test_budgets import BUDGET_KEY, budget_config, spend
from ..upstreams.openai_mock import MockUpstream, RefusedPort

SECRET = "hook-password-e2e-5d1c"


@contextlib.contextmanager
def receiver() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            received.append({"host": self.headers.get("host"), "body": json.loads(self.rfile.read(length))})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()
        server.server_close()


def test_the_webhook_host_header_carries_no_credentials(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    with receiver() as (port, received):
        url = f"http://alerts:{SECRET}@127.0.0.1:{port}/hook"
        config = budget_config(upstream, refused, 4.0, mode="soft", alert_webhook=url, period="weekly")
        gateway = gateway_factory(config)
        with make_client(gateway, BUDGET_KEY) as client:
            assert spend(client) == 200  # $5 of a $4 soft budget: crosses it
        for _ in range(100):
            if received:
                break
            threading.Event().wait(0.05)
        assert received, "no alert arrived"
        assert received[0]["host"] == f"127.0.0.1:{port}"
        assert SECRET not in gateway.output()
