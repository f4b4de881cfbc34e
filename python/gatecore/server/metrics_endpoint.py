"""`GET /metrics`: this server's figures in Prometheus text or OpenMetrics, every worker's added up."""

from __future__ import annotations

from typing import Any

from gatecore.auth.stage import AuthStage, client_secret
from gatecore.errors import AuthenticationFailed, Forbidden
from gatecore.telemetry.exposition import CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE, render
from gatecore.telemetry.metrics import MetricsRecorder


class MetricsEndpoint:
    """Answers scrapes from this worker's recorder and the other workers' snapshot files."""

    __slots__ = ("auth", "info", "recorder", "require_master")

    def __init__(self, recorder: MetricsRecorder, auth: AuthStage, require_master: bool, config_hash: str):
        self.recorder = recorder
        self.auth = auth
        self.require_master = require_master
        # The active config, as an info-style gauge (the hash changes on a reload).
        self.info = (
            b"# HELP gatecore_config_info The active config (its hash, as in /readyz).\n"
            b"# TYPE gatecore_config_info gauge\n"
            b'gatecore_config_info{config_hash="%s"} 1\n' % config_hash.encode()
        )

    async def answer(self, headers: Any) -> tuple[list[tuple[str, str]], bytes]:
        """The response headers and body of a scrape; raises a GatewayError when not allowed."""
        if self.require_master:
            key = await self.auth.authenticate(client_secret(headers))
            if key is None:
                raise AuthenticationFailed("The metrics endpoint needs the master key.")
            if key.source != "master":
                raise Forbidden("The metrics endpoint needs the master key.")
        recorder = self.recorder
        snapshots = [recorder.snapshot()]
        if recorder.shared is not None:
            snapshots.extend(recorder.shared.others())
        # Prometheus asks for OpenMetrics first (it has room for exemplars); anything else gets text.
        if "application/openmetrics-text" in (headers.get("accept") or ""):
            body = render(snapshots, openmetrics=True)
            if body.endswith(b"# EOF\n"):  # the info goes before the end marker
                body = body[: -len(b"# EOF\n")] + self.info + b"# EOF\n"
            return [("content-type", OPENMETRICS_CONTENT_TYPE)], body
        return [("content-type", CONTENT_TYPE)], render(snapshots) + self.info
