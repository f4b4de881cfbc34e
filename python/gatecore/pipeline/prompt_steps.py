"""A chain's earlier steps (prompts/chain_run.py), each run as a request of its own through the step
chain: the inference chain without the client-facing links (the caller was authenticated and its
body read by the pipeline request), so each step is routed, limited, called with retries and
recorded (its own ledger row, naming the pipeline request) like any chat request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

from gatecore.api.error_bodies import OPENAI
from gatecore.pipeline.chain import Chain, Link
from gatecore.request import CHAT, RequestContext
from gatecore.request.prompt_ref import PromptRef

# Links a step leaves out: the pipeline request already ran them (none is timed, so the timed
# stages' names, which the metrics and traces index by, stay those of every inference chain).
_CLIENT_LINKS = ("read_body", "run_tag", "body_capture")


def _caller_known(ctx: RequestContext) -> None:
    """The step's auth: the pipeline request's caller, copied onto the step's context."""


def step_links(links: tuple[Link, ...]) -> Iterator[Link]:
    """The inference links for a step: auth keeps the pipeline's caller, the client's links go."""
    for link in links:
        if link.name == "auth":
            yield Link("auth", lambda p: _caller_known)
        elif link.name not in _CLIENT_LINKS:
            yield link


class CapturedAnswer:
    """A step's "client": the answer is kept for the next steps instead of being written out."""

    __slots__ = ("body", "client", "parts", "status")

    def __init__(self, client: Any) -> None:
        self.status = 0
        self.body = b""
        self.parts: list[bytes] = []
        self.client = client  # the pipeline request's connection

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.body = status, body

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> CapturedAnswer:
        self.status = status
        return self

    async def send_bytes(self, data: bytes) -> None:
        self.parts.append(data)

    async def send_str(self, data: str) -> None:
        self.parts.append(data.encode())

    def client_disconnect(self) -> Any:
        """The pipeline's client going away: the step's disconnect watch aborts the step's exchange."""
        if self.client is None:
            return asyncio.get_running_loop().create_future()  # never done
        return self.client.client_disconnect()


class PromptSteps:
    """Runs a step's chat body through the step chain (prompts/chain_run.py's StepRunner)."""

    __slots__ = ("chain",)

    def __init__(self, chain: Chain):
        self.chain = chain

    async def __call__(self, parent: RequestContext, body: bytes, ref: PromptRef) -> tuple[int, bytes]:
        answer = CapturedAnswer(parent.client)
        headers: Any = parent.headers
        ctx = RequestContext(CHAT, parent.request_id, body, time.perf_counter_ns(), headers, answer)
        ctx.key, ctx.api_key, ctx.run_id, ctx.prompt = parent.key, parent.api_key, parent.run_id, ref
        error = await self.chain.run(ctx, "/v1/prompts/" + ref.name)
        if ctx.client_gone:  # the pipeline's client went away during the step
            parent.client_gone = True
            return 499, b'{"error": {"message": "The client went away."}}'
        if error is not None:
            return error.status, OPENAI.render_error(error)
        return answer.status, answer.body or b"".join(answer.parts)
