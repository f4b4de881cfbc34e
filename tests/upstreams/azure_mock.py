"""A loopback Azure OpenAI resource: POST /openai/deployments/{deployment}/chat/completions
?api-version=..., and the v1 Responses API POST /openai/v1/responses, authenticated with `api-key`,
answering in OpenAI's format (written from Azure OpenAI's REST reference). Steered by the deployment name (see loopback.py):

| option | effect |
| --- | --- |
| `status=N` | answer N with Azure's error shape (`{"error": {"code": "<N>", "message"}}`, no `type`) |
| `content_filter` | answer 400 as Azure's prompt filter does (code content_filter, innererror ResponsibleAIPolicyViolation) |
| `finish=R` | finish_reason R (e.g. content_filter when the completion was filtered) |
"""

from __future__ import annotations

from aiohttp import web

from .loopback import LoopbackServer, send_events, steering
from .openai_format import chunk_events, completion, reply_text, usage_of
from .openai_responses import answer_responses

API_KEY = "az-mock-e2e-key-3b9a"
CONTENT_FILTER_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy."
)


class AzureMock(LoopbackServer):
    def routes(self, app: web.Application) -> None:
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
        app.router.add_post("/openai/v1/responses", self._responses)

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        """Azure's v1 Responses API: the deployment is the body's `model` (openai_responses.py answers)."""
        received = await self.record(request)
        if request.headers.get("api-key") != API_KEY:
            received.finished.set()
            body = {"error": {"code": "401", "message": "Access denied due to invalid subscription key."}}
            return web.json_response(body, status=401)
        return await answer_responses(request, received)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        received = await self.record(request)
        if request.headers.get("api-key") != API_KEY:
            body = {"error": {"code": "401", "message": "Access denied due to invalid subscription key."}}
            return web.json_response(body, status=401)
        if not request.query.get("api-version"):
            return web.json_response({"error": {"code": "404", "message": "Resource not found"}}, status=404)
        name, options = steering(request.match_info["deployment"])
        if "status" in options:
            status = int(options["status"])
            return web.json_response(
                {"error": {"code": str(status), "message": f"mock azure {status}"}}, status=status
            )
        if "content_filter" in options:
            error = {
                "message": CONTENT_FILTER_MESSAGE,
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": {"hate": {"filtered": True, "severity": "high"}},
                },
            }
            return web.json_response({"error": error}, status=400)
        body = received.body_json
        text = reply_text(body)
        finish = options.get("finish") or "stop"
        usage = usage_of(body, text)
        if body.get("stream") is True:
            include = (body.get("stream_options") or {}).get("include_usage") is True
            events = chunk_events(name, text, finish, usage if include else None, usage_in_last=False)
            return await send_events(request, received, events, options, "text/event-stream")
        return web.json_response(completion(name, text, finish, usage))
