"""A small client of the admin API for tests (stdlib http.client, one connection per call)."""

from __future__ import annotations

import http.client
import json
from typing import Any

from .gateway import Gateway


class AdminClient:
    """Calls /admin/v1/… with one key; returns (status, parsed JSON body or None)."""

    def __init__(self, gw: Gateway, key: str | None):
        self.port = gw.port
        self.headers = {"content-type": "application/json"}
        if key:
            self.headers["authorization"] = f"Bearer {key}"

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
        payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20.0)
        try:
            conn.request(method, "/admin/v1" + path, body=payload, headers=self.headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        return response.status, (json.loads(data) if data else None)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        """The body of a call that must answer `status`."""
        got, answer = self.call(method, path, body)
        assert got == status, f"{method} {path}: {got} {answer}"
        return answer

    def close(self) -> None:
        """Nothing held between calls; kept so tests read the same with any client."""
